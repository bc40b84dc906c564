"""Fetch a release over HTTP(S): bounded by the signed size, resumed or retried with backoff, and
kept only when its sha256 matches the signed one."""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from pathlib import Path

from edge.bundle.load import sha256_file
from edge.errors import BundleError
from edge.fleet.release import Desired

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
FIRST_RETRY_S = 2.0


def download(desired: Desired, target: Path, *, timeout_s: float, attempts: int,
             stop: threading.Event | None = None) -> None:
    """Write the release to ``target``; a BundleError when it cannot be fetched or is not the signed one.

    A partial file from an earlier try is resumed with a Range request (a server that ignores it
    sends the whole file again). ``stop`` ends the backoff waits early (the service is stopping)."""
    partial = target.with_name(target.name + ".partial")
    problem = "no attempt made"
    for attempt in range(attempts):
        if attempt:
            wait_s = FIRST_RETRY_S * 2 ** (attempt - 1)
            log.warning("fleet: download of %s failed (%s); retrying in %.0f s", desired.url, problem, wait_s)
            if stop is not None and stop.wait(wait_s):
                break
        try:
            if _fetch(desired, partial, timeout_s):
                break
            problem = "the connection closed early"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            problem = str(exc)
    else:
        partial.unlink(missing_ok=True)
        raise BundleError(f"cannot download release {desired.version} from {desired.url} after {attempts} "
                          f"tries: {problem}")
    if stop is not None and stop.is_set():
        raise BundleError("download stopped: the service is stopping")
    digest = sha256_file(partial)
    if digest != desired.sha256:
        partial.unlink()
        raise BundleError(f"release {desired.version} from {desired.url} has sha256 {digest}, not the signed "
                          f"{desired.sha256}: changed on the server or in transit")
    partial.replace(target)


def _fetch(desired: Desired, partial: Path, timeout_s: float) -> bool:
    """One request; True when ``partial`` now holds exactly ``desired.size`` bytes."""
    have = partial.stat().st_size if partial.exists() else 0
    if have > desired.size:
        partial.unlink()
        have = 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    request = urllib.request.Request(desired.url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # the signed url is http(s)
        if response.status != 206:
            have = 0
        with partial.open("ab" if have else "wb") as out:
            while chunk := response.read(_CHUNK):
                have += len(chunk)
                if have > desired.size:
                    partial.unlink()
                    raise BundleError(f"release {desired.version} from {desired.url} is larger than the signed "
                                      f"{desired.size} bytes")
                out.write(chunk)
    return have == desired.size

