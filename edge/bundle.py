"""Model bundle format v1: a folder of model files described by ``manifest.json``.

The manifest is the contract between ``export/`` (workstation) and ``edge/`` (board): it says
how to preprocess a frame, which ONNX files to run, what the labels mean, how the model was
quantized and how well INT8 agreed with FP32. Loading a bundle needs no torch/transformers.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator

from edge.bundle_files import open_member, read_member, sha256_stream, verify_member
from edge.config.loader import format_location
from edge.config.section import Section
from edge.errors import BundleError
from edge.files import write_atomically

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


class FileEntry(Section):
    path: str = Field(description="Path relative to the bundle folder, '/'-separated.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _inside_bundle(cls, path: str) -> str:
        parts = PurePosixPath(path).parts
        if not parts or path.startswith("/") or ".." in parts or path == MANIFEST_NAME:
            raise ValueError(f"file path {path!r} must be a relative path inside the bundle")
        return path


class ModelSource(Section):
    id: str = Field(description="Hub id or local path the model was exported from.")
    architecture: str = Field(description="e.g. 'clip', 'siglip', 'efficientnet-lite0'.")
    revision: str | None = Field(None, description="Hub revision (commit) when exported from the hub.")
    content_sha256: str | None = Field(None, description="Hash of the checkpoint's weight files.")


class Preprocessing(Section):
    """Everything needed to turn a frame into the model's input tensor, as data (timm-style)."""

    input_size: tuple[int, int] = Field(description="(height, width) of the model input.")
    resize_mode: Literal["shortest_edge", "exact"] = Field(
        description="'shortest_edge': scale the short side to resize_px keeping aspect; 'exact': to input_size."
    )
    resize_px: int = Field(gt=0, description="Target short side for 'shortest_edge'.")
    crop: Literal["center", "none"] = Field(description="Center-crop to input_size after resizing.")
    interpolation: Literal["bicubic", "bilinear", "nearest"] = Field(description="Resampling filter.")
    rescale_factor: float = Field(1 / 255, description="Multiply uint8 pixels by this before normalising.")
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: Literal["RGB", "BGR"] = "RGB"
    layout: Literal["NCHW", "NHWC"] = "NCHW"


class ImageModel(Section):
    file: str = Field(description="ONNX file of the image encoder.")
    input_name: str
    embedding_output: str = Field(description="Output holding the (B, D) image embedding.")
    patch_output: str | None = Field(None, description="Output holding (B, N, C) patch tokens, if exported.")
    feature_outputs: list[str] = Field(
        default_factory=list,
        description="Outputs holding (B, C, H, W) mid-level feature maps (CNNs), fine to coarse; the board "
                    "averages each locally and joins them on one grid as the patch features.",
    )
    patch_neighbourhood_px: int = Field(
        3, ge=1, le=7,
        description="Side of the local average over each feature map, in cells (1: none); chosen at export.",
    )
    patch_top_share: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="The patch head's frame score: mean of this share of the worst patches (0: the worst one).",
    )
    logits_output: str | None = Field(
        None,
        description="Output holding (B, K) classifier logits (image-only backbones that keep their ImageNet head).",
    )
    reference_file: str | None = Field(None, description="The FP32 ONNX kept for comparison, if any.")


class TextModel(Section):
    file: str = Field(description="ONNX file of the text encoder.")
    tokenizer_file: str = Field(description="tokenizer.json (Hugging Face `tokenizers` format).")
    input_ids_name: str
    attention_mask_name: str | None
    embedding_output: str
    max_length: int = Field(gt=0)
    pad_to_max_length: bool = Field(False, description="SigLIP was trained with padding to max_length.")


class Label(Section):
    name: str = Field(min_length=1)
    severity: Literal["ok", "warning", "fault"]
    prompts: list[str] = Field(min_length=1)


class Labels(Section):
    entries: list[Label] = Field(min_length=1)
    embeddings_file: str = Field(description=".npy of (L, D) float32 L2-normalised text embeddings.")
    activation: Literal["softmax", "sigmoid"] = Field(description="softmax for CLIP, sigmoid for SigLIP.")
    logit_scale: float = Field(gt=0, description="exp(logit_scale) of the checkpoint, already exponentiated.")
    logit_bias: float = Field(0.0, description="SigLIP's learned bias; 0 for CLIP.")


class Quantization(Section):
    mode: Literal["static", "dynamic", "none"]
    per_channel: bool = False
    calibration_method: Literal["minmax", "entropy", "percentile"] | None = None
    calibration_images: int = 0
    calibration_fingerprint: str | None = Field(None, description="sha256 over the calibration images' hashes.")
    ops_excluded: list[str] = Field(default_factory=list, description="Op types kept in float.")
    activation_bits: Literal[8, 16] | None = Field(
        8,
        description="Bits of the quantized activations (16: an older precise recipe); null when weight_only.",
    )
    reduced_range_weights: bool = Field(
        False,
        description="INT8 kernels' weights use 7 of 8 bits, so x86 CPUs without VNNI compute them without "
        "saturating; false in bundles from before this was recorded, which may be wrong on such CPUs.",
    )
    weight_only: bool = Field(
        False,
        description="Only the weights are quantized (int8, int16 in small layers), activations stay float: the "
        "accurate fallback taken when 8-bit missed the gate. The board folds the weights to float at load.",
    )


class Validation(Section):
    """FP32 vs INT8 agreement measured at export time on the calibration folder's images."""

    images: int = Field(ge=0)
    cosine_mean: float
    cosine_min: float
    top1_agreement: float | None = Field(
        None, description="Fraction of images whose top-1 label (image-only: nearest other image) agrees.")
    max_probability_shift: float | None = None
    score_rank_correlation: dict[str, float] = Field(
        default_factory=dict,
        description="Per baseline head: Spearman rank correlation of FP32 and INT8 leave-one-out anomaly scores.",
    )
    score_rank_interval: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Per baseline head: the bootstrap interval of that rank correlation (5th, 95th percentile).",
    )
    auroc_fp32: float | None = Field(
        None, description="AUROC on the labelled validation folder (good/, defect/), FP32.")
    auroc_int8: float | None = Field(None, description="The same AUROC with the INT8 model.")
    auroc_difference_interval: tuple[float, float] | None = Field(
        None, description="Paired bootstrap interval of INT8 minus FP32 AUROC (5th, 95th percentile).")
    text_cosine_mean: float | None = Field(
        None, description="Mean FP32/INT8 cosine of the text embeddings of every label prompt (INT8 text model kept)."
    )
    thresholds: dict[str, float] = Field(default_factory=dict)
    passed: bool


class Manifest(Section):
    format_version: Literal[1]
    kind: Literal["image-text", "image-only"]
    created_at: str = Field(description="ISO 8601 UTC time of export.")
    exporter: dict[str, str] = Field(description="Versions of edgewatch, onnx, onnxruntime, optimum, torch.")
    source: ModelSource
    preprocessing: Preprocessing
    embedding_dim: int = Field(gt=0)
    image_model: ImageModel
    text_model: TextModel | None = None
    labels: Labels | None = None
    quantization: Quantization
    validation: Validation | None = None
    files: list[FileEntry] = Field(min_length=1)

    def referenced_files(self) -> list[str]:
        """Every file the manifest points at; each must be listed (hashed) in ``files``."""
        names = [self.image_model.file]
        if self.image_model.reference_file:
            names.append(self.image_model.reference_file)
        if self.text_model:
            names += [self.text_model.file, self.text_model.tokenizer_file]
        if self.labels:
            names.append(self.labels.embeddings_file)
        return names


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
        from edge import signing  # cryptography only on boards that check signatures

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
