"""The ``model`` section of the config: which bundle to run and how onnxruntime runs it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.config.section import ConfigPath, Section

Provider = Literal["auto", "cpu", "cuda", "tensorrt"]
GraphOptimization = Literal["disable", "basic", "extended", "all"]


class ModelSettings(Section):
    bundle: ConfigPath = Field(description="Model bundle folder written by `edgewatch export`.")
    trusted_keys: list[ConfigPath] = Field(
        default_factory=list,
        description="Public key files (`edgewatch bundle keygen`) whose signatures are accepted; when set, an "
        "unsigned bundle or one signed by another key is refused. List old and new keys while rotating.",
    )
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 = all cores.")
    provider: Provider = Field(
        "auto", description="Execution provider; 'auto' takes TensorRT/CUDA when present, else CPU."
    )
    memory_arena: bool = Field(
        True, description="onnxruntime CPU memory arena: faster; turn off to save resident memory on small boards."
    )
    graph_optimization: GraphOptimization = Field(
        "all", description="onnxruntime graph optimisation level."
    )
    tensorrt_fp16: bool = Field(
        False, description="TensorRT (Jetson): build the engine with FP16 kernels; faster, check verdicts after."
    )
    tensorrt_engine_cache: bool = Field(
        True, description="TensorRT: keep engines in <state_dir>/tensorrt: built once per model, not at every start."
    )
    spin_threads: bool = Field(
        False, description="Let idle onnxruntime threads spin between operators: a little faster per frame, but "
                           "they keep burning CPU after each frame (benchmarks/thread_spinning.py measures both)."
    )


class LearningConfig(Section):
    enabled: bool = Field(False, description="Add confident cloud answers to the asset's few-shot memory.")
    min_confidence: float = Field(0.9, ge=0, le=1, description="Only cloud answers at least this confident teach.")
    max_examples_per_label: int = Field(20, ge=1, description="Oldest learned examples are dropped beyond this.")
