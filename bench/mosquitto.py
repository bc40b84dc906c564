"""A real Mosquitto broker on 127.0.0.1 for tests and benchmarks: start, stop, restart on the same port."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.ports import free_port, listening


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
    )
    if found is None:
        raise FileNotFoundError("mosquitto is not installed (scripts/test.sh installs the Debian package)")
    return found


class Mosquitto:
    """One broker process with persistence in ``folder``, so a graceful restart keeps sessions."""

    def __init__(self, folder: Path, port: int | None = None, listener_config: str = "",
                 anonymous: bool = True) -> None:
        """``listener_config``: lines for the listener (TLS files); ``anonymous`` False needs a password_file."""
        self.folder = folder
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{listener_config}"
            f"allow_anonymous {'true' if anonymous else 'false'}\n"
            # as root mosquitto would drop to its own user, which cannot read pytest's private folders
            f"{'user root' if os.geteuid() == 0 else ''}\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            if listening(self.port, self.host):
                return self
            time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        """SIGTERM: mosquitto writes its persistence file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
