"""Helpers for service tests: a fake clock that advances when the loop waits, an inline executor."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO_ROOT / "examples" / "demo.yaml"
DEMO_DIR = REPO_ROOT / "examples" / "demo"


class FakeClock:
    """Time stands still until the loop waits; then it jumps and the hooks see the new time."""

    def __init__(self, wall_start_s: float = 1_800_000_000.0) -> None:
        self.now_s = 0.0
        self.wall_start_s = wall_start_s
        self.hooks: list[Callable[[float], None]] = []

    def time(self) -> float:
        return self.wall_start_s + self.now_s

    def monotonic(self) -> float:
        return self.now_s

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if event.is_set():
            return True
        self.now_s += timeout_s
        for hook in self.hooks:
            hook(self.now_s)
        return event.is_set()


class InlineExecutor(concurrent.futures.Executor):
    """Runs each submitted check at once in the caller's thread: a deterministic loop for tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future
