"""Shared fixtures: the real CWRU recordings beside the repo, and small on-disk helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def cwru_dir() -> Path:
    path = SHARED_DATA / "cwru"
    if not (path / "records.json").is_file():
        pytest.skip(f"real CWRU records not found at {path}")
    return path


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real Mosquitto broker on 127.0.0.1 for the whole run; yields (host, port)."""
    from tests.mosquitto import Mosquitto

    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto")).start()
    try:
        yield broker.host, broker.port
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def board_image(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The arm64 test image (board tests only): (Built, forwarded port); built once per run."""
    from tests.board_support import build_test_image

    return build_test_image(tmp_path_factory.mktemp("board"))
