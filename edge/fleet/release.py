"""A release: a bundle folder packed as a deterministic tar, and the signed desired-state message
that points boards at it.

The tar holds ``bundle/`` and, for a config rollout, ``overrides.yaml`` (``edge.fleet.overrides``);
it is byte-identical for the same inputs (sorted names, zero times and owners), so its sha256 names
the release, overrides included. The desired-state message (``version``, ``url``, ``sha256``,
``size``, ``serial``) is signed with the bundle keys (``edge.bundle.signing``) over its canonical JSON:
whoever can publish on the broker still cannot move a board to a URL or hash of their choosing, and
``serial`` (raised with every publish) lets a board refuse an older signed message replayed to it.
Unpacking refuses absolute paths, ``..``, links and anything but plain files and folders, whatever
the archive claims.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from edge.bundle.signing import ALGORITHM, TrustedKey, key_id
from edge.errors import BundleError, UsageError
from edge.fleet.overrides import OVERRIDES_NAME

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
TOP = "bundle"  # every member of a release lives under bundle/, but for the overrides beside it
MAX_MESSAGE_BYTES = 4096
_SIGNED_FIELDS = ("version", "url", "sha256", "size", "serial")


@dataclass(frozen=True)
class Desired:
    """A verified desired state: which version, where to fetch it, and what its bytes must hash to."""

    version: str
    url: str
    sha256: str
    size: int
    serial: int
    key_id: str


def check_version(version: str) -> str:
    if not VERSION.match(version):
        raise UsageError(f"release version {version!r} must be 1-64 letters, digits, '.', '_', '+' or '-' "
                         "(it names a folder on the board)")
    return version


def pack_release(bundle: Path, version: str, out_dir: Path, overrides: bytes | None = None) -> Path:
    """Write ``<out_dir>/edgewatch-<version>.tar`` from a bundle folder (links inside it are refused) and
    the config overrides, already checked (``edge.fleet.overrides.read_overrides``), if any."""
    check_version(version)
    if not (bundle / "manifest.json").is_file():
        raise UsageError(f"{bundle} is not a bundle folder (no manifest.json)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_member(TOP, directory=True))
        for path in sorted(bundle.rglob("*")):
            name = f"{TOP}/{path.relative_to(bundle).as_posix()}"
            if path.is_symlink():
                raise UsageError(f"{path} is a link; a release holds plain files only")
            if path.is_dir():
                tar.addfile(_member(name, directory=True))
            else:
                data = path.read_bytes()
                tar.addfile(_member(name, size=len(data)), io.BytesIO(data))
        if overrides is not None:
            tar.addfile(_member(OVERRIDES_NAME, size=len(overrides)), io.BytesIO(overrides))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"edgewatch-{version}.tar"
    target.write_bytes(buffer.getvalue())
    return target


def _member(name: str, *, directory: bool = False, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def canonical(fields: dict[str, Any]) -> bytes:
    """The exact bytes signed: sorted keys, no spaces, UTF-8."""
    return json.dumps({name: fields[name] for name in _SIGNED_FIELDS}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def desired_message(version: str, url: str, archive: Path, private_key: Any, serial: int) -> bytes:
    """The signed desired-state message for the release ``archive`` served at ``url``; ``serial`` must be
    higher than that of every message published before (``edge.fleet.rollout.new_serial``)."""
    data = archive.read_bytes()
    fields: dict[str, Any] = {"version": check_version(version), "url": url,
                              "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "serial": serial}
    signature = {"algorithm": ALGORITHM, "key_id": key_id(private_key.public_key()),
                 "value": base64.b64encode(private_key.sign(canonical(fields))).decode("ascii")}
    return json.dumps({**fields, "signature": signature}).encode("utf-8")


def verify_desired(payload: bytes, trusted: Sequence[TrustedKey]) -> Desired:
    """The desired state in ``payload`` once its signature checks out; a BundleError says why not."""
    from cryptography.exceptions import InvalidSignature

    if len(payload) > MAX_MESSAGE_BYTES:
        raise BundleError(f"desired-state message of {len(payload)} bytes (at most {MAX_MESSAGE_BYTES})")
    try:
        document = json.loads(payload.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        if "serial" not in document:
            raise BundleError(f"desired state for {str(document.get('version'))[:64]!r} has no serial, so a replay "
                              "of it cannot be told apart: it was published by an edgewatch without replay "
                              "protection; upgrade edgewatch on the workstation and publish it again with "
                              "'edgewatch fleet rollout'")
        version, url, sha256, size, serial = (document[name] for name in _SIGNED_FIELDS)
        signature = document["signature"]
        if not (isinstance(version, str) and VERSION.match(version) and isinstance(url, str)
                and url.startswith(("http://", "https://")) and isinstance(sha256, str)
                and re.fullmatch(r"[0-9a-f]{64}", sha256) and isinstance(size, int) and size > 0
                and type(serial) is int and serial >= 0):
            raise ValueError("version, url (http/https), sha256 (64 hex digits), size (bytes) or serial "
                             "(a whole number) is malformed")
        if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
            raise ValueError(f"signature must be an object with algorithm '{ALGORITHM}'")
        signed_by = str(signature["key_id"])
        value = base64.b64decode(str(signature["value"]), validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, binascii.Error) as exc:
        raise BundleError(f"desired-state message unreadable: {exc}") from exc
    known = {key.key_id: key for key in trusted}
    if signed_by not in known:
        raise BundleError(f"desired state for {version} is signed by key {signed_by}, which is not trusted here "
                          f"(trusted: {', '.join(sorted(known)) or 'none'})")
    try:
        known[signed_by].public_key.verify(value, canonical(document))
    except InvalidSignature as exc:
        raise BundleError(f"desired state for {version}: the signature does not match its fields "
                          "(changed after signing, or forged)") from exc
    return Desired(version, url, sha256, size, serial, signed_by)


def claimed(payload: bytes) -> tuple[str | None, int | None]:
    """The version and serial an unverified message names, only to say which message a report answers."""
    try:
        document = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    version, serial = document.get("version"), document.get("serial")
    return (version if isinstance(version, str) and len(version) <= 64 else None,
            serial if type(serial) is int else None)


def unpack_release(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` (which must not exist yet); return ``dest/bundle`` (its config
    overrides, if any, are ``dest/overrides.yaml``)."""
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = tar.getmembers()
            for member in members:
                parts = PurePosixPath(member.name).parts
                if member.name == OVERRIDES_NAME and member.isfile():
                    continue
                if member.name.startswith("/") or ".." in parts or not parts or parts[0] != TOP:
                    raise BundleError(f"release {archive.name}: member {member.name!r} is outside {TOP}/")
                if not (member.isfile() or member.isdir()):
                    raise BundleError(f"release {archive.name}: member {member.name!r} is a link or device; "
                                      "a release holds plain files only")
            dest.mkdir(parents=True)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"release {archive.name} cannot be unpacked: {exc}") from exc
    return dest / TOP
