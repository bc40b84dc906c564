"""Shared fixtures: the real CWRU recordings (``edge.cwru``), and small on-disk helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from bench.mosquitto import Mosquitto
from edge import cwru
from edge.escalation.local_server import LocalCloudServer

if TYPE_CHECKING:
    from edge.vision.encoder import ImageEncoder

REPO_ROOT = Path(__file__).resolve().parent.parent
CwruRecords = dict[str, cwru.Record]  # by name: what the cwru_records fixture gives


@pytest.fixture(scope="session")
def cwru_records() -> CwruRecords:
    """The real CWRU records by name: the subset shipped in edge/cwru, or the full set where
    ``EDGEWATCH_CWRU`` names its folder (the same tests, on the whole records)."""
    return cwru.records(Path(os.environ.get("EDGEWATCH_CWRU") or cwru.BUNDLED))


def record_npy(record: cwru.Record, folder: Path) -> Path:
    """The record as a float32 ``.npy`` in ``folder``: what ``edgewatch vibration analyze`` reads."""
    path = folder / f"{record.name}.npy"
    np.save(path, record.samples())
    return path


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real Mosquitto broker on 127.0.0.1 for the whole run; yields (host, port)."""
    broker = start_broker(tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker.host, broker.port
    finally:
        broker.stop()


@pytest.fixture
def cloud() -> Iterator[LocalCloudServer]:
    """The local OpenAI-compatible server on 127.0.0.1 (faults scripted per test), fresh for each test."""
    with LocalCloudServer() as server:
        yield server


@pytest.fixture(scope="session")
def encoder() -> ImageEncoder:
    """The demo bundle's real INT8 encoder, loaded once: the service tests check with it."""
    from edge.bundle.load import load_bundle  # here, so that collecting the other tests loads no model runtime
    from edge.vision.encoder import ImageEncoder

    return ImageEncoder.load(load_bundle(REPO_ROOT / "examples" / "demo" / "bundle", verify=True))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny local CLIP checkpoint (``bench.checkpoints``), built once: the export tests only read it."""
    from bench.checkpoints import build_tiny_clip  # here: it needs the workstation extras (torch)

    return build_tiny_clip(tmp_path_factory.mktemp("hf") / "clip")


def start_broker(folder: Path, **options: Any) -> Mosquitto:
    """A started Mosquitto (``bench.mosquitto``); scripts/test.sh installs mosquitto."""
    return Mosquitto(folder, **options).start()
@pytest.fixture(scope="session")
def board_image(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The arm64 test image (board tests only): (Built, forwarded port); built once per run."""
    from tests.board_support import build_test_image

    return build_test_image(tmp_path_factory.mktemp("board"))
