"""The checkpoint's own image processor -> the manifest's preprocessing section (``for_checkpoint``).

Values come from the processor that ``AutoImageProcessor`` builds from ``preprocessor_config.json``
(file values over class defaults, exactly what ``transformers`` would apply), never from constants,
so a checkpoint with an unusual size or mean is described as it really is. The built-in CNN has no
processor file: its documented preprocessing is written out here, at the input size the user chose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from edge.bundle.manifest import Preprocessing
from edge.errors import ExportError, UsageError
from export.sources import BUILTIN, Checkpoint

# PIL resample codes used by the HF processors
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}

# EfficientNet-Lite from efficientnet-lite-pytorch: its README feeds torchvision's Resize(224)
# (bilinear, short side) and ImageNet mean/std; each variant is built for a square input (Lite0 224,
# Lite1 240, Lite2 260 px), hence the crop.
EFFICIENTNET_LITE0_PX = BUILTIN["efficientnet-lite0"].input_px
# A fully convolutional network takes any size its five stride-2 stages divide evenly; below 96 px
# the stride-16 map is under 6x6 cells, above 1024 px a frame has over 20x the pixels of 224 px.
INPUT_SIZE_STEP_PX = 32
INPUT_SIZE_RANGE_PX = (96, 1024)


def efficientnet_lite(input_size_px: int = EFFICIENTNET_LITE0_PX) -> Preprocessing:
    """Shortest edge resized to ``input_size_px``, centre crop of that square: a larger input keeps small defects."""
    low, high = INPUT_SIZE_RANGE_PX
    if not (low <= input_size_px <= high and input_size_px % INPUT_SIZE_STEP_PX == 0):
        raise UsageError(f"--input-size {input_size_px} is not supported: give a multiple of {INPUT_SIZE_STEP_PX} "
                         f"from {low} to {high} pixels (the network halves the image five times)")
    return _efficientnet(input_size_px)


def _efficientnet(input_size_px: int) -> Preprocessing:
    """The preprocessing itself, for a size already known to suit the network."""
    return Preprocessing(
        input_size=(input_size_px, input_size_px),
        resize_mode="shortest_edge",
        resize_px=input_size_px,
        crop="center",
        interpolation="bilinear",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )


def for_checkpoint(checkpoint: Checkpoint, input_size_px: int | None = None) -> Preprocessing:
    """The preprocessing a bundle of ``checkpoint`` records: the one place ``--input-size`` is applied."""
    if checkpoint.architecture in BUILTIN:
        # each variant's own training size (Lite1 240, Lite2 260 px: not multiples of 32, but what it was built for)
        native = BUILTIN[checkpoint.architecture].input_px
        return _efficientnet(native) if input_size_px is None else efficientnet_lite(input_size_px)
    pre = from_checkpoint(checkpoint.path)
    if input_size_px is not None and pre.input_size != (input_size_px, input_size_px):
        height, width = pre.input_size
        raise UsageError(f"--input-size {input_size_px} cannot be used with {checkpoint.id}: a ViT's position "
                         f"embeddings fix its input size at {height}x{width} pixels, so leave --input-size out")
    return pre


def from_checkpoint(folder: Path) -> Preprocessing:
    """Read the image processor of a Hugging Face checkpoint folder."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(folder, use_fast=False)  # the processor we describe
    except (OSError, ValueError) as exc:
        raise ExportError(f"{folder}: the image processor (preprocessor_config.json) cannot be read: {exc}") from exc
    return from_processor(processor, folder)


def from_processor(processor: Any, where: Path | str) -> Preprocessing:
    """A CLIPImageProcessor / SiglipImageProcessor instance -> Preprocessing."""
    resample = int(getattr(processor, "resample", 3))
    if resample not in _RESAMPLE:
        raise ExportError(f"{where}: image processor resample={resample} is not supported (nearest, bilinear, bicubic)")
    if not getattr(processor, "do_resize", True):
        raise ExportError(f"{where}: image processors without resizing are not supported")
    size: dict[str, int] = dict(processor.size)
    resize_mode: Literal["shortest_edge", "exact"]
    crop: Literal["center", "none"]
    if "shortest_edge" in size:
        resize_mode, resize_px = "shortest_edge", int(size["shortest_edge"])
        input_size = (resize_px, resize_px)
    elif "height" in size and "width" in size:
        resize_mode, resize_px = "exact", int(size["height"])
        input_size = (int(size["height"]), int(size["width"]))
    else:
        raise ExportError(f"{where}: image processor size {size} is not supported (shortest_edge or height/width)")
    crop = "none"
    if getattr(processor, "do_center_crop", False):
        crop_size = dict(processor.crop_size)
        input_size, crop = (int(crop_size["height"]), int(crop_size["width"])), "center"
    elif resize_mode == "shortest_edge":
        raise ExportError(f"{where}: shortest-edge resizing without a centre crop gives no fixed input size")
    do_normalize = getattr(processor, "do_normalize", True)
    mean = tuple(float(v) for v in processor.image_mean) if do_normalize else (0.0, 0.0, 0.0)
    std = tuple(float(v) for v in processor.image_std) if do_normalize else (1.0, 1.0, 1.0)
    rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
    return Preprocessing(
        input_size=input_size,
        resize_mode=resize_mode,
        resize_px=resize_px,
        crop=crop,
        interpolation=_RESAMPLE[resample],  # type: ignore[arg-type]
        rescale_factor=rescale,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
    )
