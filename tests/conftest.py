"""Shared fixtures: the real CWRU recordings beside the repo, and small on-disk helpers."""

from __future__ import annotations

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
