"""One check path: the service loop, ``edgewatch check`` and the ELPV benchmark judge a frame alike.

Real ELPV solar cells (the ``elpv-dataset`` package), enrolled into a profile of a small real bundle
with patch tokens (tests/bundle_factory.py): each held-out cell gets the same p-value from
``Service.check`` on a folder camera, from ``edgewatch check --json`` and from the scoring function of
``benchmarks/elpv_check.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.image_sets import elpv_cells
from benchmarks.elpv_check import check_cell
from edge.cli.main import main
from edge.service.loop import Service
from edge.service.stages import SystemClock
from edge.service.wiring import StateFile, build_asset, load_encoder
from edge.settings import load_config
from edge.store.layout import open_history
from tests.bundle_factory import make_bundle

ENROLLED = 60


@pytest.fixture(scope="module")
def elpv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """(bundle, profile, held-out cells: two normal, two defective). The tiny model is no detector:
    the cells only have to reach the heads by every path."""
    root = tmp_path_factory.mktemp("elpv-path")
    paths, probabilities = elpv_cells()
    normal = [path for path, p in zip(paths, probabilities, strict=True) if p == 0]
    defective = [path for path, p in zip(paths, probabilities, strict=True) if p == 1]
    (root / "normal").mkdir()
    for path in normal[:ENROLLED]:
        (root / "normal" / path.name).symlink_to(path)
    bundle = make_bundle(root / "bundle", patches=True)
    profile = root / "profile.npz"
    assert main(["enroll", "--bundle", str(bundle), "--normal", str(root / "normal"), "--out", str(profile)]) == 0
    return bundle, profile, [*normal[ENROLLED:ENROLLED + 2], *defective[:2]]


def _loop_p_value(tmp_path: Path, bundle: Path, profile: Path, cell: Path) -> float:
    """The p-value the running service stores for ``cell``, seen by a folder camera."""
    (tmp_path / "camera").mkdir(parents=True)
    (tmp_path / "camera" / cell.name).symlink_to(cell)
    document = {"state_dir": str(tmp_path / "state"), "model": {"bundle": str(bundle)},
                "assets": [{"id": "line-1", "profile": str(profile),
                            "cameras": [{"name": "el", "type": "folder", "path": str(tmp_path / "camera")}]}]}
    (tmp_path / "edgewatch.yaml").write_text(yaml.safe_dump(document))
    config = load_config(tmp_path / "edgewatch.yaml")
    asset = build_asset(config.assets[0], load_encoder(config), {}, StateFile(config.state.service_state),
                        SystemClock())
    try:
        with open_history(config.state, config.history) as history:
            verdict_id = Service([asset], history).check(asset)
            assert verdict_id is not None
            stored = history.get(verdict_id)
    finally:
        asset.cameras[0].close()
    assert stored is not None
    (seen,) = [e for e in stored.verdict.evidence if e.source == "vision:el"]
    return float(seen.values["p_value"])


def _cli_p_value(capsys: pytest.CaptureFixture[str], bundle: Path, profile: Path, cell: Path) -> float:
    assert main(["check", "--bundle", str(bundle), "--profile", str(profile), "--image", str(cell), "--json"]) == 0
    return float(json.loads(capsys.readouterr().out)["vision"]["p_value"])


def test_loop_cli_and_benchmark_give_the_same_p_value(elpv: tuple[Path, Path, list[Path]], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bundle, profile, cells = elpv
    found = []
    for index, cell in enumerate(cells):
        loop = _loop_p_value(tmp_path / str(index), bundle, profile, cell)
        cli = _cli_p_value(capsys, bundle, profile, cell)
        benchmark = check_cell(bundle, profile, cell)["p_value"]
        assert loop == cli == benchmark, cell.name
        found.append(loop)
    assert all(0.0 < p <= 1.0 for p in found)
    assert len(set(found)) > 1  # the cells are told apart: the agreement is not that of a constant


def test_bench_vision_memory_step_runs_the_checks_vision_stage(elpv: tuple[Path, Path, list[Path]]) -> None:
    from bench.workers import run_isolated

    bundle, profile, cells = elpv
    measured = run_isolated("vision-check", {"bundle": str(bundle), "profile": str(profile), "image": str(cells[0])})
    assert set(measured) == {"rss_mb"} and measured["rss_mb"] > 0
