"""``edgewatch export`` end to end: checkpoint -> ONNX -> INT8 -> accuracy gate -> atomic bundle.

Every step that can fail on user input (model id, labels file, calibration folder, existing
output) runs before the slow ones, and the bundle is staged so a failure leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from edge.bundle.load import recipe_note
from edge.bundle.manifest import Label, Labels, Manifest, Validation
from edge.errors import ExportError, UsageError
from edge.vision.encoder import l2_normalise
from export import images, onnx, own_onnx, quantize, towers, validate
from export.bundle import staged_bundle
from export.labels import embed_labels, load_labels
from export.quantize import Method
from export.sources import IMAGE_ONLY, Checkpoint, require_extra, resolve

log = logging.getLogger(__name__)

Mode = Literal["static", "dynamic", "none"]
T = TypeVar("T")

IMAGE_FILE = "image.onnx"
TEXT_FILE = "text.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.npy"


@dataclass(frozen=True)
class ExportRequest:
    model: str | None  # a checkpoint, or None with ``onnx``
    out: Path
    onnx: Path | None = None  # the user's own ONNX backbone, cut at ``features``
    features: tuple[str, ...] = ()
    mean: tuple[float, float, float] | None = None  # normalisation of ``onnx``'s input (default: ImageNet)
    std: tuple[float, float, float] | None = None
    labels: Path | None = None
    calibration: Path | None = None
    validation: Path | None = None  # labelled folder (good/, defect/): the gate also compares AUROC
    quantize: Mode | None = None  # default: static with calibration images, else dynamic
    calibration_method: Method = "minmax"
    gate: validate.Gate = field(default_factory=validate.Gate)
    with_text_model: bool = False
    input_size_px: int | None = None  # square model input; default: the checkpoint's own (CNNs only may differ)
    force: bool = False
    progress: bool = True  # tqdm bars on stderr (hidden anyway when stderr is not a terminal)

    def mode(self) -> Mode:
        return self.quantize or ("static" if self.calibration else "dynamic")


@dataclass
class ExportSummary:
    bundle: Path
    manifest: Manifest
    fp32_model_bytes: int  # FP32 ONNX files the bundle would hold unquantized
    model_bytes: int  # ONNX files the bundle holds
    bundle_bytes: int
    seconds: dict[str, float]

    @property
    def fp32_bundle_bytes(self) -> int:
        return self.bundle_bytes - self.model_bytes + self.fp32_model_bytes

    def table(self) -> str:
        """The closing summary: sizes FP32 vs INT8, agreement figures, time."""
        m, q = self.manifest, self.manifest.quantization
        how = q.mode + (f", {q.calibration_method}, {q.calibration_images} images" if q.mode == "static" else "")
        note = recipe_note(q)
        how += f"{note}, as 8-bit INT8 missed the gate" if note else ""
        ratio = self.bundle_bytes / self.fp32_bundle_bytes
        rows = [
            ("bundle", str(self.bundle)),
            ("model", f"{m.source.id} ({m.source.architecture}, {m.kind}, {m.embedding_dim}-d)"),
            ("quantization", how),
            ("ONNX models", f"FP32 {_mb(self.fp32_model_bytes)} -> {_mb(self.model_bytes)}"),
            ("bundle size", f"FP32 {_mb(self.fp32_bundle_bytes)} -> {_mb(self.bundle_bytes)} ({ratio:.0%})"),
        ]
        if q.ops_excluded:
            rows.append(("kept float", ", ".join(q.ops_excluded)))
        if m.validation:
            rows.append(("INT8 vs FP32", _describe(m.validation)))
        if m.labels:
            rows.append(("labels", ", ".join(f"{e.name} ({e.severity})" for e in m.labels.entries)))
        rows.append(("time", ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _describe(v: Validation) -> str:
    parts = [f"{v.images} images", f"cosine mean {v.cosine_mean:.4f} (min {v.cosine_min:.4f})"]
    if v.top1_agreement is not None:
        what = "top-1" if v.max_probability_shift is not None else "nearest-neighbour"
        parts.append(f"{what} agreement {v.top1_agreement:.1%}")
    if v.max_probability_shift is not None:
        parts.append(f"max probability shift {v.max_probability_shift:.3f}")
    if v.text_cosine_mean is not None:
        parts.append(f"text cosine {v.text_cosine_mean:.4f}")
    parts += validate.task_figures(v)
    return ", ".join(parts) + (" -> passed" if v.passed else " -> FAILED")


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._start
        self._start = now


def run(request: ExportRequest) -> ExportSummary:
    """Export ``request.model`` into ``request.out``; raises EdgewatchError subclasses on every failure."""
    mode = request.mode()
    if mode == "static" and request.calibration is None:
        raise UsageError("--quantize static needs --calibration DIR (a folder of your own images)")
    out = request.out.resolve()
    if out.exists() and not request.force:
        raise ExportError(f"output folder {out} already exists (use --force to replace it)")
    clock = _Clock()
    checkpoint = _checkpoint(request)
    if checkpoint.architecture in IMAGE_ONLY and (request.labels or request.with_text_model):
        raise UsageError(f"{checkpoint.id} is image-only: --labels and --with-text-model need a CLIP or SigLIP model")
    labels = load_labels(request.labels) if checkpoint.architecture not in IMAGE_ONLY else []
    with tempfile.TemporaryDirectory(prefix="edgewatch-export-") as tmp, staged_bundle(out, request.force) as staged:
        work = Path(tmp)
        fp32 = work / "image_fp32.onnx"
        if request.onnx is not None:
            loaded: towers.Towers | own_onnx.OwnModel = own_onnx.cut(
                request.onnx, list(request.features), fp32, request.input_size_px, request.mean, request.std)
        else:
            loaded = towers.load(checkpoint, request.input_size_px)
        pre = loaded.preprocessing
        image_set = (
            images.load_folder(request.calibration, pre, _bar(request, "reading images", "img"))
            if request.calibration else None
        )
        labelled = images.load_labelled(request.validation, pre) if request.validation else None
        clock.lap("load")
        if isinstance(loaded, towers.Towers):
            sample = np.concatenate(image_set.every[:2] if image_set else images.synthetic_images(pre, 2))
            onnx.export_module(loaded.image, {towers.IMAGE_INPUT: sample}, loaded.image_outputs, fp32, "image tower")
        clock.lap("export")
        fields = _manifest_fields(checkpoint, loaded, request, mode, image_set)
        head = None
        text = loaded.text if isinstance(loaded, towers.Towers) else None
        if text is not None:
            embeddings = embed_labels(labels, text)
            np.save(staged.path(LABELS_FILE), embeddings)
            fields["labels"] = {
                "entries": [label.model_dump() for label in labels], "embeddings_file": LABELS_FILE,
                "activation": text.activation, "logit_scale": text.logit_scale, "logit_bias": text.logit_bias,
            }
            head = validate.LabelHead(Labels.model_validate(fields["labels"]), embeddings)
        family: quantize.Family = loaded.family
        image_file = staged.path(IMAGE_FILE)
        fp32_bytes = fp32.stat().st_size
        if mode == "none":
            shutil.copyfile(fp32, image_file)
        else:
            gated = image_set.every if image_set else images.synthetic_images(pre)
            if image_set is None:
                log.warning("no calibration images given: INT8 is validated on synthetic images only")
            how_list = quantize.recipes(family) if mode == "static" else [None]
            for attempt, how in enumerate(how_list, start=1):
                if how is None:
                    result = quantize.quantize_dynamic(fp32, image_file, family)
                elif how.weight_only:
                    result = quantize.quantize_weights(fp32, image_file, towers.IMAGE_INPUT, family, how)
                    fields["quantization"].update(activation_bits=None, weight_only=True, reduced_range_weights=False)
                else:
                    assert image_set is not None
                    bar = _bar(request, f"calibrating ({request.calibration_method})", "img")
                    result = quantize.quantize_static(
                        fp32, image_file, towers.IMAGE_INPUT, image_set.calibration, request.calibration_method,
                        family, progress=bar(image_set.calibration), how=how,
                    )
                    fields["quantization"].update(activation_bits=how.activation_bits, weight_only=False)
                fields["quantization"]["ops_excluded"] = result.ops_excluded
                clock.lap("quantize")
                validation = validate.compare(
                    fp32, image_file, towers.IMAGE_INPUT, towers.EMBEDDING_OUTPUT, gated, request.gate,
                    labels=head, patch_output=fields["image_model"]["patch_output"],
                    feature_outputs=tuple(fields["image_model"]["feature_outputs"]), labelled=labelled,
                    neighbourhood_px=fields["image_model"]["patch_neighbourhood_px"],
                    top_share=fields["image_model"]["patch_top_share"],
                    progress=_bar(request, "validating", "img"),
                )
                clock.lap("validate")
                if validation.passed or attempt == len(how_list):
                    break
                log.warning(
                    "INT8 missed the accuracy gate (%s); retrying with weight-only quantization (float "
                    "activations: more accurate, FP32 speed instead of INT8's, a third of the FP32 size)",
                    validate.summary(validation),
                )
            validate.require_pass(validation, mode)
            fields["validation"] = validation.model_dump()
        if request.with_text_model:
            assert text is not None
            fp32_bytes += _add_text_model(staged, work, text, labels, mode, request.gate, fields)
            clock.lap("text model")
        manifest = staged.commit(fields)
    model_bytes = sum(e.bytes for e in manifest.files if e.path.endswith(".onnx"))
    bundle_bytes = sum(e.bytes for e in manifest.files)
    return ExportSummary(out, manifest, fp32_bytes, model_bytes, bundle_bytes, clock.seconds)


def _add_text_model(staged: Any, work: Path, text: towers.TextSide, labels: list[Label], mode: Mode,
                    gate: validate.Gate, fields: dict[str, Any]) -> int:
    """Export the text tower (dynamic INT8 unless --quantize none) and its tokenizer; return FP32 bytes."""
    fp32 = work / "text_fp32.onnx"
    prompts = [p for label in labels for p in label.prompts]
    ids = text.token_ids(prompts).numpy()  # (P, L) int64
    onnx.export_module(text.tower, {towers.TEXT_INPUT: ids[:2]}, (towers.TEXT_OUTPUT,), fp32, "text tower")
    target = staged.path(TEXT_FILE)
    if mode == "none":
        shutil.copyfile(fp32, target)
    else:
        quantize.quantize_dynamic(fp32, target, "transformer")
        reference = validate.run_text(fp32, towers.TEXT_INPUT, towers.TEXT_OUTPUT, ids)
        candidate = validate.run_text(target, towers.TEXT_INPUT, towers.TEXT_OUTPUT, ids)
        cosine = float(np.mean(np.sum(l2_normalise(reference) * l2_normalise(candidate), axis=-1)))
        if cosine < gate.min_cosine:
            raise ExportError(
                f"the INT8 text model failed the accuracy gate: prompt embedding cosine mean {cosine:.4f} "
                f"< {gate.min_cosine:g}; export without --with-text-model or with --quantize none"
            )
        fields["validation"]["text_cosine_mean"] = cosine
    text.tokenizer.save(str(staged.path(TOKENIZER_FILE)))
    fields["text_model"] = {
        "file": TEXT_FILE, "tokenizer_file": TOKENIZER_FILE, "input_ids_name": towers.TEXT_INPUT,
        "attention_mask_name": None, "embedding_output": towers.TEXT_OUTPUT, "max_length": text.max_length,
        "pad_to_max_length": text.pad_to_max_length,
    }
    return fp32.stat().st_size


def _checkpoint(request: ExportRequest) -> Checkpoint:
    """``--model`` resolved, or ``--onnx`` with ``--features`` checked before anything slow runs."""
    if (request.model is None) == (request.onnx is None):
        raise UsageError("give either --model or --onnx")
    if request.onnx is None:
        assert request.model is not None
        return resolve(request.model)
    if not request.features:
        raise UsageError("--onnx needs --features TENSOR[,TENSOR...]: the tensors to take patch features from")
    require_extra()
    if not request.onnx.is_file():
        raise ExportError(f"--onnx {request.onnx}: no such file")
    return Checkpoint(id=str(request.onnx), architecture="onnx", path=request.onnx.resolve())


def _manifest_fields(checkpoint: Checkpoint, loaded: towers.Towers | own_onnx.OwnModel, request: ExportRequest,
                     mode: Mode, image_set: images.ImageSet | None) -> dict[str, Any]:
    outputs = loaded.outputs
    return {
        "kind": loaded.kind,
        "exporter": _versions(),
        "source": {"id": checkpoint.id, "architecture": checkpoint.architecture, "revision": checkpoint.revision,
                   "content_sha256": checkpoint.content_sha256()},
        "preprocessing": loaded.preprocessing.model_dump(),
        "embedding_dim": loaded.embedding_dim,
        "image_model": {
            "file": IMAGE_FILE, "input_name": towers.IMAGE_INPUT, "embedding_output": towers.EMBEDDING_OUTPUT,
            "patch_output": towers.PATCH_OUTPUT if towers.PATCH_OUTPUT in outputs else None,
            "feature_outputs": [name for name in outputs if name.startswith(towers.FEATURE_PREFIX)],
            "logits_output": towers.LOGITS_OUTPUT if towers.LOGITS_OUTPUT in outputs else None,
            **own_onnx.patch_scoring(loaded),
        },
        "quantization": {
            "mode": mode,
            "per_channel": mode != "none",
            "reduced_range_weights": mode != "none" and quantize.REDUCED_RANGE_WEIGHTS,
            "calibration_method": request.calibration_method if mode == "static" else None,
            "calibration_images": len(image_set.calibration) if image_set and mode == "static" else 0,
            "calibration_fingerprint": image_set.fingerprint if image_set and mode == "static" else None,
        },
    }


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("edgewatch", "torch", "transformers", "onnx", "onnxruntime", "tokenizers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _bar(request: ExportRequest, desc: str, unit: str) -> Any:
    """A function wrapping an iterable in a tqdm bar (or passing it through when progress is off)."""
    from tqdm import tqdm

    def wrap(items: Iterable[T]) -> Iterator[T]:
        return iter(tqdm(items, desc=desc, unit=unit, disable=None if request.progress else True, leave=False))

    return wrap
