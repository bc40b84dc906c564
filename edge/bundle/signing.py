"""Ed25519 signatures over a bundle's manifest: who made this model, and has anything changed since.

The manifest lists every file's size and sha256, so one signature over its exact bytes covers the
whole bundle: ``verify_files`` then proves each file against the signed hashes. The signature
lives beside the manifest in ``manifest.sig`` (JSON: algorithm, key id, base64 signature), so
signing never rewrites the manifest and an unsigned bundle stays readable by boards that trust
no keys. Keys are PEM files: a PKCS#8 private key (optionally encrypted with the passphrase in
``$EDGEWATCH_KEY_PASSPHRASE``) kept on the workstation, and its public key on the boards.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.errors import BundleError, UsageError
from edge.files import read_bounded, write_atomically

log = logging.getLogger(__name__)

SIGNATURE_NAME = "manifest.sig"
ALGORITHM = "ed25519"
PASSPHRASE_ENV = "EDGEWATCH_KEY_PASSPHRASE"
MAX_KEY_FILE_BYTES = 16 * 1024  # a PEM Ed25519 key is ~120 bytes
MAX_SIGNATURE_FILE_BYTES = 4096
HINT = "is it the right file?"  # what a key or signature file that large most likely is not


@dataclass(frozen=True)
class TrustedKey:
    """A public key a board accepts bundles from; ``key_id`` names it in messages and signatures."""

    path: Path
    key_id: str
    public_key: Any  # cryptography's Ed25519PublicKey (imported only when signatures are used)


def key_id(public_key: Any) -> str:
    """The first 16 hex digits of sha256 over the raw 32-byte public key: short, stable, printable."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(private_path: Path) -> str:
    """Write a new private key (mode 0600) and ``<name>.pub`` beside it; return the key id.

    Refuses to overwrite either file: losing a signing key means re-signing and redeploying."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public_path = private_path.with_name(private_path.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise UsageError(f"{path} exists; choose another name (a signing key is never overwritten)")
    key = Ed25519PrivateKey.generate()
    passphrase = os.environ.get(PASSPHRASE_ENV)
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise UsageError(f"cannot write the key pair {private_path}: {exc}") from exc
    return key_id(key.public_key())


def load_private_key(path: Path) -> Any:
    """An Ed25519 private key from a PEM file (decrypted with ``$EDGEWATCH_KEY_PASSPHRASE`` when set)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = read_bounded(path, MAX_KEY_FILE_BYTES, "signing key", UsageError, HINT)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise UsageError(f"signing key {path}: {exc}; set or unset ${PASSPHRASE_ENV}") from exc
    except ValueError as exc:
        raise UsageError(f"signing key {path} is not a readable PEM private key (or the passphrase is wrong)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"signing key {path} is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_trusted_keys(paths: Sequence[Path]) -> list[TrustedKey]:
    """The boards' public keys; a missing or malformed file is a BundleError naming it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = []
    for path in paths:
        data = read_bounded(path, MAX_KEY_FILE_BYTES, "trusted key", BundleError, HINT)
        try:
            public_key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise BundleError(f"trusted key {path} is not a readable PEM public key") from exc
        if not isinstance(public_key, Ed25519PublicKey):
            raise BundleError(f"trusted key {path} is a {type(public_key).__name__}, not an Ed25519 key")
        keys.append(TrustedKey(path, key_id(public_key), public_key))
    return keys


def sign_manifest(root: Path, manifest_bytes: bytes, private_key: Any) -> str:
    """Write ``manifest.sig`` for these exact manifest bytes; return the signing key's id."""
    signing_key_id = key_id(private_key.public_key())
    document = {"algorithm": ALGORITHM, "key_id": signing_key_id,
                "signature": base64.b64encode(private_key.sign(manifest_bytes)).decode("ascii")}
    target = root / SIGNATURE_NAME
    try:
        write_atomically(target, (json.dumps(document, indent=2) + "\n").encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc}") from exc
    return signing_key_id


def check_signature(root: Path, manifest_bytes: bytes, trusted: Sequence[TrustedKey]) -> TrustedKey:
    """The trusted key that signed these manifest bytes; otherwise a BundleError saying why not."""
    from cryptography.exceptions import InvalidSignature

    path = root / SIGNATURE_NAME
    if not path.is_file():
        raise BundleError(f"bundle {root} is not signed ({SIGNATURE_NAME} is missing) and this board accepts only "
                          f"bundles signed by a trusted key; sign it with 'edgewatch bundle sign'")
    signed_by, signature = _read_signature(path)
    known = {key.key_id: key for key in trusted}
    if signed_by not in known:
        raise BundleError(f"bundle {root} is signed by key {signed_by}, which is not trusted here "
                          f"(trusted: {', '.join(sorted(known)) or 'none'})")
    key = known[signed_by]
    try:
        key.public_key.verify(signature, manifest_bytes)
    except InvalidSignature as exc:
        raise BundleError(f"bundle {root}: the signature does not match {root.name}/manifest.json for trusted key "
                          f"{signed_by} ({key.path.name}): the manifest changed after signing, or the signature is "
                          "forged") from exc
    return key


def _read_signature(path: Path) -> tuple[str, bytes]:
    data = read_bounded(path, MAX_SIGNATURE_FILE_BYTES, "signature", BundleError, HINT)
    try:
        document = json.loads(data.decode("utf-8"))
        if not isinstance(document, dict) or document.get("algorithm") != ALGORITHM:
            raise ValueError(f"expected an object with algorithm '{ALGORITHM}'")
        signed_by, encoded = document["key_id"], document["signature"]
        if not isinstance(signed_by, str) or not isinstance(encoded, str):
            raise ValueError("key_id and signature must be strings")
        return signed_by, base64.b64decode(encoded, validate=True)
    except (UnicodeDecodeError, ValueError, KeyError, binascii.Error) as exc:
        raise BundleError(f"{path} is not a readable bundle signature: {exc}") from exc
