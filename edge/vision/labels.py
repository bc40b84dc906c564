"""Add or remove a bundle's zero-shot labels on the board, keeping the bundle verifiable at every instant.

The new label embeddings go to a file named by its content (``labels-<sha12>.npy``); a manifest
listing it with its hash is written beside ``manifest.json`` and renamed over it. That one rename is
the commit: a reader (``bundle verify``, a service reloading) sees the old bundle or the new one,
never a mix, and a crash leaves at most an unlisted file, removed by the next edit. Model files are
neither copied nor touched (a ViT-B/32 bundle is ~100 MB on an SD card), so profiles enrolled with
the bundle stay valid: their fingerprint covers the image model and preprocessing, not the labels.
A signed bundle is changed only when the private key is given to sign the new manifest (right after
the rename; until then a board with trusted keys refuses the bundle rather than running it), and the
old embeddings are deleted only once the new manifest (and signature) are in place.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import signing
from edge.bundle.load import Bundle, load_bundle, write_manifest
from edge.bundle.manifest import MANIFEST_NAME, FileEntry, Label, Labels, Manifest
from edge.errors import InputError, StorageError, UsageError
from edge.files import write_atomically
from edge.vision.text import TextEncoder

log = logging.getLogger(__name__)

# CLIP-style prompt ensemble used when a label is added without its own prompts
DEFAULT_TEMPLATES = ("a photo of {name}.", "a close-up photo of {name}.", "a photo of a machine with {name}.")


def default_prompts(name: str) -> list[str]:
    return [template.format(name=name) for template in DEFAULT_TEMPLATES]


def add_label(root: Path, label: Label, resign: Path | None = None) -> Manifest:
    """Embed ``label``'s prompts with the bundle's text model and add it; returns the new manifest.
    A signed bundle is changed only with ``resign`` (the private key that signs the new manifest)."""
    key = _signing_key(root, resign)
    bundle = load_bundle(root, verify=True)
    labels = _labels(bundle)
    if any(entry.name == label.name for entry in labels.entries):
        raise InputError(f"bundle {root} already has a label '{label.name}': remove it first to change it")
    row = TextEncoder.load(bundle).label_embedding(label.prompts)  # (D,)
    embeddings = np.vstack([bundle.label_embeddings(), row[None, :]])  # (L + 1, D)
    return _commit(bundle, [*labels.entries, label], embeddings, key)


def remove_label(root: Path, name: str, resign: Path | None = None) -> Manifest:
    """Drop one label (its stored embedding row goes with it); needs no text model."""
    key = _signing_key(root, resign)
    bundle = load_bundle(root, verify=True)
    labels = _labels(bundle)
    keep = [index for index, entry in enumerate(labels.entries) if entry.name != name]
    if len(keep) == len(labels.entries):
        known = ", ".join(entry.name for entry in labels.entries)
        raise InputError(f"bundle {root} has no label '{name}' (it has: {known})")
    if not keep:
        raise InputError(f"'{name}' is the last label of bundle {root}: a bundle keeps at least one")
    return _commit(bundle, [labels.entries[i] for i in keep], bundle.label_embeddings()[keep], key)


def _signing_key(root: Path, resign: Path | None) -> Any:
    """The private key for a signed bundle (loaded before any change, so a wrong key or passphrase changes
    nothing); None for an unsigned one. Editing a signed bundle without re-signing it would leave a bundle
    that every board with ``model.trusted_keys`` refuses to start with."""
    if resign is not None:
        return signing.load_private_key(resign)
    if (root / signing.SIGNATURE_NAME).exists():
        raise UsageError(f"bundle {root} is signed: changing its labels would void its {signing.SIGNATURE_NAME}, "
                         "and boards with model.trusted_keys would refuse it; add --resign KEY (the private key) "
                         "to sign the changed manifest, or change the labels where the key is and sign there")
    return None


def _labels(bundle: Bundle) -> Labels:
    if bundle.manifest.labels is None:
        raise InputError(f"bundle {bundle.root} is image-only ({bundle.manifest.source.architecture}): it has no "
                         "zero-shot labels to change")
    return bundle.manifest.labels


def _commit(bundle: Bundle, entries: list[Label], embeddings: np.ndarray, key: Any) -> Manifest:
    """Write the embeddings under a new name, then swap the manifest in with one rename (and sign it with
    ``key``); the old embeddings are deleted only after that."""
    assert bundle.manifest.labels is not None
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(embeddings, dtype=np.float32))  # (L, D) float32
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    name = f"labels-{digest[:12]}.npy"
    old = bundle.manifest.labels.embeddings_file
    files = [entry for entry in bundle.manifest.files if entry.path not in (old, name)]
    files.append(FileEntry(path=name, sha256=digest, bytes=len(data)))
    document = bundle.manifest.model_dump(mode="json")
    document["labels"].update(entries=[entry.model_dump(mode="json") for entry in entries], embeddings_file=name)
    document["files"] = [entry.model_dump(mode="json") for entry in files]
    manifest = Manifest.model_validate(document)
    root = bundle.root
    try:  # the new labels file first: the manifest that names it is the commit point
        write_atomically(root / name, data, mode=0o644)
        written = write_manifest(root / MANIFEST_NAME, manifest)
    except OSError as exc:
        raise StorageError(f"bundle {root} cannot be updated (it is unchanged): {exc}") from exc
    if key is not None:  # a crash before this line leaves a bundle boards refuse (never a wrong one to run)
        signed_by = signing.sign_manifest(root, written, key)  # UsageError names the file it could not write
        log.info("bundle %s: signed again with key %s", root, signed_by)
    _remove_unlisted(root, manifest)
    log.info("bundle %s: %d labels now (%s)", root, len(entries), ", ".join(entry.name for entry in entries))
    return manifest


def _remove_unlisted(root: Path, manifest: Manifest) -> None:
    """Label files an earlier edit (or a crash during one) left behind."""
    listed = {entry.path for entry in manifest.files}
    for path in root.glob("labels*.npy"):
        if path.name not in listed:
            try:
                path.unlink()
            except OSError as exc:  # harmless: an unlisted file is never read
                log.warning("bundle %s: old label file %s not removed: %s", root, path.name, exc)
