"""Loading a bundle: the manifest read as stored, every file checked against its size and sha256 (and
the manifest against a trusted signature when keys are given), then read once from those checked bytes.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from edge.bundle.files import open_member, read_member, sha256_stream, verify_member
from edge.bundle.manifest import FORMAT_VERSION, MANIFEST_NAME, Manifest, Quantization
from edge.config.loader import format_location
from edge.errors import BundleError
from edge.files import write_atomically

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    """A verified bundle on disk."""

    root: Path
    manifest: Manifest

    def read(self, name: str) -> bytes:
        """A listed file's bytes, checked against the manifest's size and sha256 as they are read: load
        models and labels from these bytes, never by path again (what was checked is what is used)."""
        entry = next((entry for entry in self.manifest.files if entry.path == name), None)
        if entry is None:
            raise BundleError(f"bundle {self.root}: {name} is not listed in its manifest")
        return read_member(self.root, name, entry.bytes, entry.sha256)

    def label_embeddings(self) -> np.ndarray:
        """(L, D) float32 L2-normalised text embeddings, one row per label."""
        if self.manifest.labels is None:
            raise BundleError(f"bundle {self.root} has no labels")
        path = self.root / self.manifest.labels.embeddings_file
        try:
            embeddings = np.load(io.BytesIO(self.read(self.manifest.labels.embeddings_file)), allow_pickle=False)
        except ValueError as exc:
            raise BundleError(f"{path}: label embeddings cannot be read: {exc}") from exc
        expected = (len(self.manifest.labels.entries), self.manifest.embedding_dim)
        if embeddings.shape != expected:
            raise BundleError(f"{path}: label embeddings have shape {embeddings.shape}, manifest says {expected}")
        return embeddings.astype(np.float32, copy=False)


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return sha256_stream(handle)


def read_manifest_bytes(root: Path) -> bytes:
    """The manifest exactly as stored: what a signature covers (a link or a special file is refused,
    as for every file of a bundle)."""
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist")
    if not manifest_path.exists() and not manifest_path.is_symlink():
        raise BundleError(f"{root} is not a model bundle: {MANIFEST_NAME} is missing")
    try:
        with open_member(root, MANIFEST_NAME) as handle:
            return handle.read()
    except OSError as exc:
        raise BundleError(f"{manifest_path} cannot be read: {exc}") from exc


def read_manifest(root: Path, data: bytes | None = None) -> Manifest:
    """Parse and validate ``manifest.json`` (format version checked first, for a clear message);
    ``data`` is the manifest already read (and signature-checked) by the caller."""
    manifest_path = root / MANIFEST_NAME
    if data is None:
        data = read_manifest_bytes(root)
    try:
        raw: Any = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(f"{manifest_path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BundleError(f"{manifest_path}: expected a JSON object")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{manifest_path}: bundle format version {version!r} is not supported "
            f"(this edgewatch reads version {FORMAT_VERSION}); re-export the model with this version"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{format_location(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        raise BundleError(f"{manifest_path}: invalid manifest: {problems}") from exc
    listed = {entry.path for entry in manifest.files}
    missing = [name for name in manifest.referenced_files() if name not in listed]
    if missing:
        raise BundleError(f"{manifest_path}: files not listed with a hash: {', '.join(missing)}")
    return manifest


def verify_files(root: Path, manifest: Manifest) -> None:
    """Recompute every size and sha256; the first mismatch is an error naming the file. (Loaders check
    again what they read, through :meth:`Bundle.read`.)"""
    for entry in manifest.files:
        verify_member(root, entry.path, entry.bytes, entry.sha256)


def write_manifest(path: Path, manifest: Manifest) -> bytes:
    """Write a manifest atomically: replacing it is the commit point of a bundle (labels edit one in place).
    Returns the bytes written (what a signature must cover)."""
    document = (json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n").encode("utf-8")
    write_atomically(path, document, mode=0o644)
    return document


def load_bundle(root: Path, verify: bool = True, trusted_keys: Sequence[Path] = ()) -> Bundle:
    """Read a bundle; with ``verify`` (the default) every file's hash is checked first.

    With ``trusted_keys`` (public key files) the manifest must carry a valid signature by one of
    them, checked on the very bytes that are then parsed; its hashes then vouch for every file.
    """
    data = read_manifest_bytes(root)
    if trusted_keys:
        from edge.bundle import signing  # cryptography only on boards that check signatures

        signer = signing.check_signature(root, data, signing.load_trusted_keys(trusted_keys))
        log.info("bundle %s is signed by trusted key %s (%s)", root, signer.key_id, signer.path)
    manifest = read_manifest(root, data)
    if verify or trusted_keys:  # a signature vouches for the files only through their hashes
        verify_files(root, manifest)
    return Bundle(root=root, manifest=manifest)


def recipe_note(q: Quantization) -> str:
    """', weight-only' / ', 16-bit activations' / '' (plain 8-bit), for one-line summaries."""
    if q.weight_only:
        return ", weight-only (activations float)"
    return ", 16-bit activations" if q.activation_bits == 16 else ""


def describe(bundle: Bundle) -> str:
    """A human summary for ``edgewatch bundle inspect``."""
    m = bundle.manifest
    pre = m.preprocessing
    lines = [
        f"bundle      {bundle.root}",
        f"format      v{m.format_version}, {m.kind}, created {m.created_at}",
        f"source      {m.source.id} ({m.source.architecture}"
        + (f", revision {m.source.revision}" if m.source.revision else "")
        + ")",
        f"embedding   {m.embedding_dim}-d",
        f"input       {pre.input_size[0]}x{pre.input_size[1]} {pre.channel_order} {pre.layout}, "
        f"resize {pre.resize_mode} {pre.resize_px}px {pre.interpolation}, crop {pre.crop}",
        f"quantized   {m.quantization.mode}"
        + (
            f" ({m.quantization.calibration_method}, {m.quantization.calibration_images} images"
            f"{recipe_note(m.quantization)})"
            if m.quantization.mode == "static"
            else ""
        )
        + (", 7-bit weights" if m.quantization.reduced_range_weights else ""),
    ]
    if m.quantization.ops_excluded:
        lines.append(f"kept float  {', '.join(m.quantization.ops_excluded)}")
    if m.labels:
        labels = ", ".join(f"{label.name} ({label.severity})" for label in m.labels.entries)
        lines.append(f"labels      {labels}")
    if m.text_model:
        lines.append(f"text model  {m.text_model.file} (labels can be added on the board)")
    if m.validation:
        v = m.validation
        agreement = f", top-1 agreement {v.top1_agreement:.1%}" if v.top1_agreement is not None else ""
        lines.append(
            f"validation  {'passed' if v.passed else 'FAILED'}: {v.images} images, cosine mean "
            f"{v.cosine_mean:.4f} min {v.cosine_min:.4f}{agreement}"
        )
    total = sum(entry.bytes for entry in m.files)
    lines.append(f"files       {len(m.files)} files, {total / 1e6:.1f} MB")
    for entry in m.files:
        lines.append(f"  {entry.path:<32} {entry.bytes / 1e6:8.2f} MB  {entry.sha256[:12]}")
    return "\n".join(lines)
