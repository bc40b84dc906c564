"""Build small local Hugging Face CLIP and SigLIP checkpoints (no hub access).

Each builder writes a folder that ``from_pretrained`` reads like a hub checkpoint: config, random
weights, a tokenizer trained here with ``tokenizers``, and the image processor's
``preprocessor_config.json``. Tiny ones make export tests fast; ``build_clip(full_size=True)`` gives
the real ViT-B/32 CLIP architecture (random weights) for benchmarks.

    build_tiny_clip(dir) -> Path       32x32 input, 2 layers, 16-d embeddings
    build_tiny_siglip(dir) -> Path     32x32 input, 2 layers, 32-d embeddings
    build_clip(dir, full_size=True)    ViT-B/32 CLIP, 224x224, 512-d embeddings
    build_tiny_dinov2(dir) -> Path     32x32 input (crop of 36), 12 layers of 16-d tokens, no text tower
"""

from __future__ import annotations

from pathlib import Path

_CORPUS = [
    "a photo of a machine in normal condition",
    "a photo of an oil leak under a pump",
    "a photo of corrosion and rust on a metal surface",
    "a photo of smoke coming from a motor",
    "a photo of a blocked air vent full of dust",
    "a photo of a loose or misaligned drive belt",
    "a photo of overheating discoloration on a housing",
    "a close-up photo of a clean gearbox",
    "an image of a damaged conveyor",
    "a picture of a solar cell with a crack",
]
# EOS must not get id 2: CLIP treats eos_token_id == 2 as a legacy config and pools at argmax(input_ids)
_SPECIALS = ["<unk>", "<pad>", "<bos>", "<eos>"]
_TEXT_MAX_LENGTH = 16


def _train_tokenizer(folder: Path, pad_to_max_length: bool) -> dict[str, int]:
    """Train a small BPE tokenizer and save it as a fast tokenizer; return the special token ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=_SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    ids = {token: tokenizer.token_to_id(token) for token in _SPECIALS}
    if pad_to_max_length:  # SigLIP style: no BOS, EOS appended, pooled at the last position
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A <eos>", special_tokens=[("<eos>", ids["<eos>"])]
        )
    else:  # CLIP style: BOS ... EOS, pooled at the first EOS
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<bos> $A <eos>", special_tokens=[("<bos>", ids["<bos>"]), ("<eos>", ids["<eos>"])]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<eos>" if not pad_to_max_length else "<pad>",
        unk_token="<unk>",
        model_max_length=_TEXT_MAX_LENGTH,
    )
    fast.save_pretrained(folder)
    return {"vocab_size": tokenizer.get_vocab_size(), "bos": ids["<bos>"], "eos": ids["<eos>"], "pad": ids["<pad>"]}


def build_clip(folder: Path, full_size: bool = True) -> Path:
    """A CLIP checkpoint with random weights: ViT-B/32 when ``full_size``, else a 2-layer toy."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = _train_tokenizer(folder, pad_to_max_length=False)
    special = {"bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"]}
    if full_size:  # CLIPConfig's defaults are openai/clip-vit-base-patch32
        text = {"vocab_size": 49408, "max_position_embeddings": 77, **special}
        config = CLIPConfig(text_config=text, vision_config={}, projection_dim=512)
        side = 224
    else:
        text = {
            "vocab_size": ids["vocab_size"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 2, "max_position_embeddings": _TEXT_MAX_LENGTH, **special,
        }
        vision = {
            "image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2,
        }
        config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        side = 32
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": side}, crop_size={"height": side, "width": side}
    ).save_pretrained(folder)
    return folder


def build_tiny_clip(folder: Path) -> Path:
    return build_clip(folder, full_size=False)


def build_tiny_siglip(folder: Path) -> Path:
    """A 2-layer SigLIP with random weights; its processor resizes to 32x32 exactly, mean/std 0.5."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = _train_tokenizer(folder, pad_to_max_length=True)
    text = {
        "vocab_size": ids["vocab_size"], "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "max_position_embeddings": _TEXT_MAX_LENGTH,
        "bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"],
    }
    vision = {
        "image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 2,
    }
    torch.manual_seed(0)
    SiglipModel(SiglipConfig(text_config=text, vision_config=vision)).eval().save_pretrained(folder)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def build_tiny_dinov2(folder: Path) -> Path:
    """A 12-layer DINOv2 with random weights and 8-px patches, its processor as facebook/dinov2-small's
    (shortest edge, bicubic, centre crop, ImageNet mean/std) at 36 -> 32 px."""
    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # image_size is the pre-training size, as in the real checkpoints (518 there): position embeddings
    # are interpolated to the processor's crop
    config = Dinov2Config(image_size=40, patch_size=8, hidden_size=16, intermediate_size=32,
                          num_hidden_layers=12, num_attention_heads=2)
    torch.manual_seed(0)
    Dinov2Model(config).eval().save_pretrained(folder)
    BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32}, resample=3,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder
