"""The contract every output implements: the service hands each verdict to every sink."""

from __future__ import annotations

from typing import Protocol

from edge.evidence import Verdict


class VerdictSink(Protocol):
    """An output. ``publish`` must not block the check loop for long: buffer and return."""

    def publish(self, verdict: Verdict) -> None: ...

    def close(self) -> None: ...
