"""The checkpoint's own image processor -> the manifest's preprocessing section.

Values come from the processor that ``AutoImageProcessor`` builds from ``preprocessor_config.json``
(file values over class defaults, exactly what ``transformers`` would apply), never from constants,
so a checkpoint with an unusual size or mean is described as it really is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from edge.bundle import Preprocessing
from edge.errors import ExportError

# PIL resample codes used by the HF processors
_RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}

# EfficientNet-Lite0 from efficientnet-lite-pytorch: its README feeds torchvision's Resize(224)
# (bilinear, short side) and ImageNet mean/std; the network is built for 224x224, hence the crop.
EFFICIENTNET_LITE0 = Preprocessing(
    input_size=(224, 224),
    resize_mode="shortest_edge",
    resize_px=224,
    crop="center",
    interpolation="bilinear",
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)


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
