"""What every HTTP API handler returns or raises (shared by ``http_api`` and its route mixins)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Problem(Exception):
    """An HTTP error answer (status + one sentence); never leaves the HTTP API."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
