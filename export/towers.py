"""Load a checkpoint as the PyTorch modules the bundle needs: an image tower and (CLIP/SigLIP) a text tower.

Each tower is wrapped so that its outputs are exactly the manifest's, in this order:

    image tower  pixel_values (B, 3, H, W) -> image_embeds (B, D), patch_tokens (B, N, C)          (CLIP, SigLIP)
                 pixel_values (B, 3, H, W) -> image_embeds (B, D), features_s8 (B, C8, H/8, W/8),
                                              features_s16 (B, C16, H/16, W/16), logits (B, 1000)  (EfficientNet)
                 pixel_values (B, 3, H, W) -> image_embeds (B, C), features_l9 (B, C, H/14, W/14)      (DINOv2)
    text tower   input_ids (B, L) int64    -> text_embeds (B, D)

``image_embeds`` is what ``get_image_features`` returns (not L2-normalised). ``patch_tokens`` are
the last layer's patch tokens after the final LayerNorm, without CLIP's class token, for the
board's patch-level normal-baseline head. A CNN exports its mid-level maps instead (the last block
at strides 8 and 16, PatchCore's layers 2 and 3), which the board aggregates into patch features
(``edge.vision.patch_features``), and so does DINOv2 with one block's patch tokens laid out on their
grid (no class token, no final LayerNorm: mid-level, as for the CNN). The text tower takes no
attention mask: CLIP's causal attention never lets the pooled EOS token see the padding after it,
and SigLIP pads to a fixed length and pools the last position, as it was trained.

The CLIP, SigLIP and DINOv2 wrappers are ``HFTower``s: they carry their transformers (sub-)config,
which optimum's ONNX exporter reads (``export.onnx``). EfficientNet-Lite0 is a plain ``nn.Module``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from edge.bundle.manifest import Preprocessing
from edge.errors import ExportError
from export import processor
from export.sources import BUILTIN, Checkpoint

log = logging.getLogger(__name__)

IMAGE_INPUT = "pixel_values"
TEXT_INPUT = "input_ids"
EMBEDDING_OUTPUT = "image_embeds"
PATCH_OUTPUT = "patch_tokens"
LOGITS_OUTPUT = "logits"
TEXT_OUTPUT = "text_embeds"
FEATURE_STRIDES = (8, 16)
FEATURE_PREFIX = "features_"  # every output named so is a (B, C, H, W) map the board turns into patch features
FEATURE_OUTPUTS = tuple(f"{FEATURE_PREFIX}s{stride}" for stride in FEATURE_STRIDES)
DINOV2_DEPTH_SHARE = 0.75


@dataclass
class TextSide:
    """The text tower and everything needed to tokenize prompts the way the checkpoint was trained."""

    tower: nn.Module
    tokenizer: Any  # tokenizers.Tokenizer with truncation/padding configured, saved as tokenizer.json
    max_length: int
    pad_to_max_length: bool
    activation: Literal["softmax", "sigmoid"]
    logit_scale: float  # already exponentiated
    logit_bias: float

    def token_ids(self, prompts: list[str]) -> torch.Tensor:
        """(P, L) int64 token ids, padded as the board's tokenizer.json will pad them."""
        encodings = self.tokenizer.encode_batch(prompts)
        return torch.tensor([e.ids for e in encodings], dtype=torch.int64)


@dataclass
class Towers:
    kind: Literal["image-text", "image-only"]
    image: nn.Module
    image_outputs: tuple[str, ...]
    preprocessing: Preprocessing
    embedding_dim: int
    text: TextSide | None = None
    family: Literal["transformer", "convnet"] = "transformer"  # how it is quantized (export.quantize)

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.image_outputs


class HFTower(nn.Module):
    """A transformers tower; ``config`` is the tower's own sub-config (vision or text), as optimum expects."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config


class _ClipImage(HFTower):
    def __init__(self, model: Any) -> None:
        super().__init__(model.config.vision_config)
        self.vision = model.vision_model
        self.projection = model.visual_projection

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.vision(pixel_values=pixel_values)
        patches = self.vision.post_layernorm(out.last_hidden_state[:, 1:, :])  # drop the class token
        return self.projection(out.pooler_output), patches


class _ClipText(HFTower):
    def __init__(self, model: Any) -> None:
        super().__init__(model.config.text_config)
        self.text = model.text_model
        self.projection = model.text_projection

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.text(input_ids=input_ids).pooler_output)


class _SiglipImage(HFTower):
    def __init__(self, model: Any) -> None:
        super().__init__(model.config.vision_config)
        self.vision = model.vision_model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.vision(pixel_values=pixel_values)
        return out.pooler_output, out.last_hidden_state  # SigLIP has no class token


class _SiglipText(HFTower):
    def __init__(self, model: Any) -> None:
        super().__init__(model.config.text_config)
        self.text = model.text_model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text(input_ids=input_ids).pooler_output


class _Dinov2Image(HFTower):
    """The class token after the final LayerNorm (the embedding) and the patch tokens of ``layers`` on their grid."""

    def __init__(self, model: Any, layers: tuple[int, ...], input_size: tuple[int, int]) -> None:
        config = copy.copy(model.config)
        config.image_size = list(input_size)  # optimum traces at the bundle's size, not the pre-training one
        super().__init__(config)
        self.model = model
        self.layers = layers
        patch = int(model.config.patch_size)
        self.grid = (input_size[0] // patch, input_size[1] // patch)
        self.prefix = 1 + int(getattr(model.config, "num_register_tokens", 0))  # class token, registers

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        maps = []
        for layer in self.layers:  # hidden_states[0] is the embedding layer's output
            tokens = out.hidden_states[layer + 1][:, self.prefix:, :]  # (B, N, C)
            maps.append(tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *self.grid))
        return (out.pooler_output, *maps)


class _EfficientNetImage(nn.Module):
    """Pooled pre-classifier features (the embedding), the mid-level maps at ``FEATURE_STRIDES``, the logits."""

    def __init__(self, model: Any, feature_blocks: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.feature_blocks = feature_blocks

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        x = m._swish(m._bn0(m._conv_stem(pixel_values)))
        maps: list[torch.Tensor] = []
        for index, block in enumerate(m._blocks):
            x = block(x)
            if index in self.feature_blocks:
                maps.append(x)  # (B, C, H/stride, W/stride)
        x = m._swish(m._bn1(m._conv_head(x)))
        pooled = m._avg_pooling(x).flatten(1)  # (B, 1280)
        return (pooled, *maps, m._fc(pooled))


def load(checkpoint: Checkpoint, input_size_px: int | None = None) -> Towers:
    """Checkpoint -> Towers in eval mode, for a square input of ``input_size_px`` (default: the checkpoint's own);
    loading errors become one ExportError."""
    pre = processor.for_checkpoint(checkpoint, input_size_px)
    try:
        if checkpoint.architecture in BUILTIN:
            return _load_efficientnet(checkpoint.architecture, checkpoint.path, pre)
        if checkpoint.architecture == "dinov2":
            return _load_dinov2(checkpoint.path, pre)
        return _load_hf(checkpoint, pre)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ExportError(f"{checkpoint.id}: the checkpoint cannot be loaded: {exc}") from exc


def _load_hf(checkpoint: Checkpoint, pre: Preprocessing) -> Towers:
    from transformers import AutoModel, AutoTokenizer

    # eager attention exports as plain MatMul/Softmax, which the quantizer and optimizer understand
    model = AutoModel.from_pretrained(checkpoint.path, attn_implementation="eager").eval()
    siglip = checkpoint.architecture == "siglip"
    text_config = model.config.text_config
    max_length = int(text_config.max_position_embeddings)
    text = TextSide(
        tower=(_SiglipText(model) if siglip else _ClipText(model)).eval(),
        tokenizer=_board_tokenizer(AutoTokenizer.from_pretrained(checkpoint.path), max_length, siglip),
        max_length=max_length,
        pad_to_max_length=siglip,
        activation="sigmoid" if siglip else "softmax",
        logit_scale=float(model.logit_scale.exp().item()),
        logit_bias=float(model.logit_bias.item()) if siglip else 0.0,
    )
    image = (_SiglipImage(model) if siglip else _ClipImage(model)).eval()
    embedding_dim = int(model.config.vision_config.hidden_size if siglip else model.config.projection_dim)
    return Towers(
        kind="image-text",
        image=image,
        image_outputs=(EMBEDDING_OUTPUT, PATCH_OUTPUT),
        preprocessing=pre,
        embedding_dim=embedding_dim,
        text=text,
    )


def dinov2_layers(depth: int) -> tuple[int, ...]:
    """Blocks whose patch tokens a DINOv2 bundle exports: the one three quarters deep (block 9 of 12, 0-based),
    which beat earlier and later blocks on ELPV (docs/performance.md#model-choice)."""
    return (round(depth * DINOV2_DEPTH_SHARE),)


def _load_dinov2(folder: Path, pre: Preprocessing) -> Towers:
    from transformers import Dinov2Model

    model = Dinov2Model.from_pretrained(folder, attn_implementation="eager").eval()
    patch = int(model.config.patch_size)
    if pre.input_size[0] % patch or pre.input_size[1] % patch:
        raise ExportError(f"{folder}: the processor's {pre.input_size} input is not a whole number of "
                          f"{patch}-pixel patches")
    layers = dinov2_layers(int(model.config.num_hidden_layers))
    return Towers(
        kind="image-only",
        image=_Dinov2Image(model, layers, pre.input_size).eval(),
        image_outputs=(EMBEDDING_OUTPUT, *(f"{FEATURE_PREFIX}l{layer}" for layer in layers)),
        preprocessing=pre,
        embedding_dim=int(model.config.hidden_size),
    )


def _board_tokenizer(hf_tokenizer: Any, max_length: int, pad_to_max_length: bool) -> Any:
    """The checkpoint's tokenizer as a standalone ``tokenizers.Tokenizer`` that truncates and pads by itself."""
    from tokenizers import Tokenizer

    if hf_tokenizer.is_fast:
        backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    else:  # SigLIP ships a sentencepiece model only
        from transformers.convert_slow_tokenizer import convert_slow_tokenizer

        backend = convert_slow_tokenizer(hf_tokenizer)
    pad_id = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else hf_tokenizer.eos_token_id
    pad_token = hf_tokenizer.convert_ids_to_tokens(pad_id)
    backend.enable_truncation(max_length=max_length)
    if pad_to_max_length:
        backend.enable_padding(pad_id=pad_id, pad_token=pad_token, length=max_length)
    else:
        backend.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return backend


def _load_efficientnet(name: str, weights: Path, pre: Preprocessing) -> Towers:
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(name, num_classes=1000)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return Towers(
        kind="image-only",
        image=_EfficientNetImage(model, _last_blocks_at_strides(model, pre.input_size, FEATURE_STRIDES)).eval(),
        image_outputs=(EMBEDDING_OUTPUT, *FEATURE_OUTPUTS, LOGITS_OUTPUT),
        preprocessing=pre,
        embedding_dim=int(model._fc.in_features),
        text=None,
        family="convnet",
    )


def _last_blocks_at_strides(model: Any, input_size: tuple[int, int], strides: tuple[int, ...]) -> tuple[int, ...]:
    """Index of the last block whose output is 1/stride of the input, per stride: the mid-level maps."""
    x = torch.zeros(1, 3, *input_size)
    last: dict[int, int] = {}
    with torch.no_grad():
        x = model._swish(model._bn0(model._conv_stem(x)))
        for index, block in enumerate(model._blocks):
            x = block(x)
            for stride in strides:
                if x.shape[-1] == -(-input_size[1] // stride):
                    last[stride] = index
    return tuple(last[stride] for stride in strides)
