"""Waiting on real threads and servers without fixed sleeps: poll a condition under a generous bound.

The bound only keeps a broken test from hanging; no test asserts how fast something happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.01


def wait_until(condition: Callable[[], object], timeout_s: float = 10.0) -> bool:
    """True as soon as ``condition()`` is truthy; False if it is not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True
