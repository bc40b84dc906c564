"""The board tests' image: the replay demo as a service config, built once per run (cache reused)."""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from board.build import BuildRequest, Built, build
from board.inject import Payload

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN = "board-test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def guest_config(path: Path, port: int) -> Path:
    """examples/demo.yaml as a board would run it: state under /var/lib, the API on the guest's network."""
    config = yaml.safe_load((REPO_ROOT / "examples/demo.yaml").read_text(encoding="utf-8"))
    config["state_dir"] = "/var/lib/edgewatch"
    config["outputs"] = {"http": {"bind": "0.0.0.0", "port": port, "token": TOKEN}}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build_test_image(work: Path) -> tuple[Built, int]:
    port = free_port()
    config = guest_config(work / "config.yaml", port)
    request = BuildRequest(out=work / "edgewatch.img", payload=Payload(config, (REPO_ROOT / "examples/demo",)),
                           serial_autologin=True, keep_root=work / "root")
    return build(request), port
