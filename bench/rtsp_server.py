"""A real RTSP server on 127.0.0.1 for tests: GStreamer's RTSP server (Debian's
``gir1.2-gst-rtsp-server-1.0``) streaming a live test pattern, over TCP or UDP as the client asks.

GStreamer's Python bindings live in Debian's own python3, not in the project's virtual environment,
so the server runs as a child process of that interpreter (``bench/rtsp/serve.py``); this module
starts, stops, pauses (SIGSTOP: a stalled stream) and restarts it on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from bench.ports import free_port, listening

SERVE = Path(__file__).resolve().parent / "rtsp" / "serve.py"
SYSTEM_PYTHON = "/usr/bin/python3"


class RtspServer:
    """``rtsp://127.0.0.1:PORT/cam``: a moving 320x240 test pattern at 10 fps (``codec`` h264 or mjpeg)."""

    def __init__(self, codec: str = "h264", port: int | None = None) -> None:
        self.codec = codec
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self, timeout_s: float = 20.0) -> RtspServer:
        if not Path(SYSTEM_PYTHON).is_file():
            raise RuntimeError(f"{SYSTEM_PYTHON} is missing: scripts/test.sh installs Debian's python3-gi")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.process = subprocess.Popen([SYSTEM_PYTHON, str(SERVE), str(self.port), self.codec], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the RTSP server exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            if listening(self.port, "127.0.0.1"):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the RTSP server did not listen on port {self.port} within {timeout_s} s")

    def stall(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, no packet flows."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stalled server must be able to die
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
