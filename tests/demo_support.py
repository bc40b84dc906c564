"""The demo's machines as a recorded run for scoring tests: its frames and labels, and a config whose
history the test fills with hand-made verdicts."""

from __future__ import annotations

from pathlib import Path

from edge.demo import data, run


def demo_run(tmp_path: Path) -> tuple[Path, data.DemoData, Path]:
    """(config path, prepared demo data, state folder): 12 frames per machine, the shipped CWRU records, and a
    cloud nothing answers at."""
    prepared = data.prepare(tmp_path / "data", frames=12, enroll=4, examples=2)
    config, state_dir = tmp_path / "demo.yaml", tmp_path / "state"
    run.write_config(config, prepared, tmp_path / "bundle", tmp_path / "profile.npz", state_dir,
                     "http://127.0.0.1:9/v1", 8080)
    return config, prepared, state_dir
