"""Model bundle format v1: a folder of model files described by ``manifest.json``.

The manifest is the contract between ``export/`` (workstation) and ``edge/`` (board): it says
how to preprocess a frame, which ONNX files to run, what the labels mean, how the model was
quantized and how well INT8 agreed with FP32. Loading a bundle needs no torch/transformers.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Literal

from pydantic import Field, field_validator

from edge.config.section import Section

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
