"""HTTP JPEG snapshot URLs (most IP cameras): one GET per grab, with basic or digest auth.

Standard-library ``urllib`` is enough: one request per check, no streaming, and no extra
dependency to keep up to date on the board.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import numpy as np

from edge.errors import SourceError
from edge.frames.decode import MAX_IMAGE_BYTES
from edge.sources.base import Camera, decode_image
from edge.sources.config import HttpSnapshotCamera


class HttpSnapshotSource(Camera):
    config: HttpSnapshotCamera
    _opener: urllib.request.OpenerDirector | None = None

    def _open(self) -> None:
        handlers: list[urllib.request.BaseHandler] = []
        if self.config.username is not None:
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, self.config.url, self.config.username, self.config.password or "")
            handlers += [urllib.request.HTTPBasicAuthHandler(passwords),
                         urllib.request.HTTPDigestAuthHandler(passwords)]
        self._opener = urllib.request.build_opener(*handlers)

    def _grab(self) -> np.ndarray:
        assert self._opener is not None
        where = f"camera {self.name}: {_redact(self.config.url)}"
        try:
            with self._opener.open(self.config.url, timeout=self.config.timeout_s) as response:
                data = response.read(MAX_IMAGE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise SourceError(f"{where} answered HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"{where} cannot be reached: {reason}") from exc
        if len(data) > MAX_IMAGE_BYTES:
            raise SourceError(f"{where} sent more than {MAX_IMAGE_BYTES} bytes; is this a stream, not a snapshot?")
        return decode_image(data, self.resize_max_px, where)

    def _close(self) -> None:
        self._opener = None


def _redact(url: str) -> str:
    """Never log a password embedded in a URL."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
