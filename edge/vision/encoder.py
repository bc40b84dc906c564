"""The image encoder on the board: a verified bundle's ONNX model in onnxruntime, warmed up at load.

Session options are the edge-relevant ones: intra-op threads (default: every core, not spinning
when idle), the CPU
memory arena (off saves resident memory on a 2 GB board at a small speed cost), the graph
optimisation level, and the execution provider (TensorRT/CUDA on a Jetson, CPU elsewhere) with a
fallback to CPU when the requested one is not installed, logged once.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle.load import Bundle
from edge.errors import BundleError, InputError
from edge.store.layout import StateFolder
from edge.vision import cpu
from edge.vision.config import GraphOptimization, ModelSettings, Provider
from edge.vision.patch_features import patch_features, token_grid

log = logging.getLogger(__name__)

_ORT_PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                  "cpu": "CPUExecutionProvider"}
_AUTO_ORDER = ("tensorrt", "cuda", "cpu")


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run the model; mirrors the ``model`` section of the config file."""

    threads: int = 0  # 0 = every core of the board
    provider: Provider = "auto"
    memory_arena: bool = True
    graph_optimization: GraphOptimization = "all"
    spin_threads: bool = False  # idle intra-op threads spin (faster per frame, CPU busy after it) or sleep
    # Pre-packed weight copies speed up every later run; a one-shot command saves the memory instead.
    prepack_weights: bool = True
    tensorrt_fp16: bool = False
    engine_cache_dir: Path | None = None  # TensorRT engines, kept across restarts (under the state folder)

    @classmethod
    def from_settings(cls, settings: ModelSettings, state_dir: Path | None = None) -> RuntimeOptions:
        keep = state_dir is not None and settings.tensorrt_engine_cache
        cache = StateFolder(state_dir).engine_cache if state_dir is not None and keep else None
        return cls(threads=settings.threads, provider=settings.provider, memory_arena=settings.memory_arena,
                   graph_optimization=settings.graph_optimization, spin_threads=settings.spin_threads,
                   tensorrt_fp16=settings.tensorrt_fp16, engine_cache_dir=cache)

    @classmethod
    def for_one_frame(cls, settings: ModelSettings | None) -> RuntimeOptions:
        """A command that scores one frame: pre-packing would cost memory (~70 MB for ViT-B/32) and save nothing."""
        base = cls.from_settings(settings) if settings is not None else cls()
        return replace(base, prepack_weights=False)


@dataclass(frozen=True)
class Encoded:
    """One image's model outputs."""

    embedding: np.ndarray  # (D,) float32, L2-normalised
    patches: np.ndarray | None  # (N, C) float32 patch features, L2-normalised, when the bundle exports them
    inference_ms: float  # the model alone
    features_ms: float = 0.0  # its outputs turned into unit embedding and patch features
    patch_grid: tuple[int, int] | None = None  # (rows, cols) the N patches form: the anomaly map's shape


def choose_providers(requested: Provider, available: list[str]) -> list[str]:
    """onnxruntime provider list for a request; a missing accelerator falls back to CPU."""
    if requested == "auto":
        wanted = [name for name in _AUTO_ORDER if _ORT_PROVIDERS[name] in available]
    elif _ORT_PROVIDERS[requested] in available:
        wanted = [requested]
    else:
        log.warning("execution provider %s is not available in this onnxruntime (has %s); using CPU",
                    requested, ", ".join(available))
        wanted = []
    providers = [_ORT_PROVIDERS[name] for name in wanted]
    if _ORT_PROVIDERS["cpu"] not in providers:
        providers.append(_ORT_PROVIDERS["cpu"])
    return providers


def provider_settings(providers: list[str], options: RuntimeOptions) -> list[str | tuple[str, dict[str, Any]]]:
    """onnxruntime's providers argument: TensorRT gets its FP16 and engine-cache options, others their names.

    Building a TensorRT engine takes minutes on a Jetson; with the cache it happens once per
    model (onnxruntime keys engines by model and input shapes) instead of at every start.
    """
    settings: list[str | tuple[str, dict[str, Any]]] = []
    for name in providers:
        if name != _ORT_PROVIDERS["tensorrt"]:
            settings.append(name)
            continue
        trt: dict[str, Any] = {"trt_fp16_enable": options.tensorrt_fp16}
        if options.engine_cache_dir is not None:
            trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(options.engine_cache_dir),
                       trt_timing_cache_enable=True, trt_timing_cache_path=str(options.engine_cache_dir))
        settings.append((name, trt))
    return settings


def l2_normalise(array: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32): what every head compares embeddings with."""
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return (array / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, shifted by the maximum so large logits cannot overflow."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class ImageEncoder:
    """Runs a bundle's image model; construct with :meth:`load`."""

    def __init__(self, bundle: Bundle, session: object, provider: str) -> None:
        self.bundle = bundle
        self._session = session
        self.provider = provider
        model = bundle.manifest.image_model
        self._input = model.input_name
        self._outputs = ([model.embedding_output] + ([model.patch_output] if model.patch_output else [])
                         + list(model.feature_outputs))
        self.patch_grid: tuple[int, int] | None = None  # known after the warm-up inference

    @classmethod
    def load(cls, bundle: Bundle, options: RuntimeOptions | None = None) -> ImageEncoder:
        """Open the INT8 image model with edge session options and run one warm-up inference."""
        import onnxruntime as ort

        options = options or RuntimeOptions()
        settings = ort.SessionOptions()
        settings.intra_op_num_threads = options.threads or os.cpu_count() or 1
        settings.inter_op_num_threads = 1
        settings.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        settings.enable_cpu_mem_arena = options.memory_arena
        settings.enable_mem_pattern = options.memory_arena
        # By default idle worker threads sleep instead of spinning: the heads, the sensor analytics and
        # the board's other services need those cores between frames (and a spinning core burns power).
        settings.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spin_threads else "0")
        if not options.prepack_weights:
            settings.add_session_config_entry("session.disable_prepacking", "1")
        q = bundle.manifest.quantization
        if q.mode != "none" and not q.weight_only and not q.reduced_range_weights and cpu.int8_may_saturate():
            log.warning("bundle %s has full-range INT8 weights and this CPU (%s) has no VNNI: its INT8 "
                        "kernels may saturate and score wrongly; export the bundle again with this version",
                        bundle.root, cpu.model_name())
        if q.weight_only:
            # Folds each constant weight DequantizeLinear into a float weight once, at load: float kernels
            # then run at FP32 speed instead of dequantizing every weight on every frame (0.4x FP32).
            settings.add_session_config_entry("session.disable_quant_qdq", "1")
        settings.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[options.graph_optimization]
        providers = choose_providers(options.provider, ort.get_available_providers())
        if _ORT_PROVIDERS["tensorrt"] in providers and options.engine_cache_dir is not None:
            options.engine_cache_dir.mkdir(parents=True, exist_ok=True)
        path = bundle.root / bundle.manifest.image_model.file
        model = bundle.read(bundle.manifest.image_model.file)  # the checked bytes, never the path again
        start = time.perf_counter()
        try:
            session = ort.InferenceSession(model, sess_options=settings,
                                           providers=provider_settings(providers, options))
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad models
            raise BundleError(f"{path}: onnxruntime cannot load the image model: {exc}") from exc
        used = session.get_providers()[0]
        encoder = cls(bundle, session, used)
        encoder._check_io(session)
        encoder.warm_up()
        log.info("image model %s on %s, %d threads, loaded and warmed up in %.0f ms", path.name, used,
                 settings.intra_op_num_threads, (time.perf_counter() - start) * 1e3)
        return encoder

    def _check_io(self, session: object) -> None:
        inputs = {i.name for i in session.get_inputs()}  # type: ignore[attr-defined]
        outputs = {o.name for o in session.get_outputs()}  # type: ignore[attr-defined]
        missing = [name for name in self._outputs if name not in outputs]
        if self._input not in inputs or missing:
            raise BundleError(
                f"bundle {self.bundle.root}: the image model does not have the input/outputs the manifest "
                f"names (input {self._input!r}, outputs {self._outputs}); it has {sorted(inputs)} -> {sorted(outputs)}"
            )

    def input_shape(self) -> tuple[int, ...]:
        pre = self.bundle.manifest.preprocessing
        height, width = pre.input_size
        return (1, 3, height, width) if pre.layout == "NCHW" else (1, height, width, 3)

    def warm_up(self) -> None:
        """The first run allocates and tunes kernels; do it at load, not on the first real frame."""
        self.encode_batch(np.zeros(self.input_shape(), dtype=np.float32))

    def encode_batch(self, tensor: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, 3, H, W) float32 -> ((B, D) embeddings, (B, N, C) patch features or None), L2-normalised."""
        return self._features(self._run(tensor), tensor.shape[0])

    def _run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The model itself: the bundle's outputs for a batch."""
        if tensor.ndim != 4 or tensor.shape[1:] != self.input_shape()[1:]:
            raise InputError(f"model input has shape {tensor.shape}, the bundle expects (B, {self.input_shape()[1:]})")
        try:
            results: list[np.ndarray] = self._session.run(self._outputs, {self._input: tensor})  # type: ignore[attr-defined]
        except Exception as exc:  # onnxruntime's errors carry no stable type
            raise BundleError(f"bundle {self.bundle.root}: inference failed: {exc}") from exc
        return results

    def _features(self, results: list[np.ndarray], batch: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The model's outputs -> unit embeddings and patch features (mid-level maps aggregated here)."""
        embeddings = l2_normalise(np.asarray(results[0], dtype=np.float32).reshape(batch, -1))
        model = self.bundle.manifest.image_model
        if model.feature_outputs:
            maps = results[-len(model.feature_outputs):]  # [(B, C_i, H_i, W_i), ...]
            patches, self.patch_grid = patch_features([np.asarray(m, dtype=np.float32) for m in maps],
                                                       model.patch_neighbourhood_px)
        elif model.patch_output:
            patches = l2_normalise(np.asarray(results[1], dtype=np.float32))
            self.patch_grid = token_grid(patches.shape[1], self.bundle.manifest.preprocessing.input_size)
        else:
            patches = None
        return embeddings, patches

    def encode(self, tensor: np.ndarray) -> Encoded:
        """One preprocessed frame (1, 3, H, W) -> its embedding and patch tokens, the model and the
        patch aggregation timed apart (the one differs between INT8 and FP32, the other does not)."""
        start = time.perf_counter()
        results = self._run(tensor)
        ran = time.perf_counter()
        embeddings, patches = self._features(results, tensor.shape[0])
        done = time.perf_counter()
        return Encoded(embedding=embeddings[0], patches=None if patches is None else patches[0],
                       inference_ms=(ran - start) * 1e3, features_ms=(done - ran) * 1e3, patch_grid=self.patch_grid)
