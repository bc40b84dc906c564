"""Jetson plumbing: TensorRT -> CUDA -> CPU, TensorRT's FP16 and engine cache from the config."""

from __future__ import annotations

from pathlib import Path

from edge.settings import ModelSettings
from edge.store.layout import StateFolder
from edge.vision.encoder import RuntimeOptions, choose_providers, provider_settings

JETSON = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_tensorrt_gets_fp16_and_an_engine_cache_under_the_state_folder(tmp_path: Path) -> None:
    settings = ModelSettings.model_validate({"bundle": str(tmp_path), "tensorrt_fp16": True})
    options = RuntimeOptions.from_settings(settings, tmp_path / "state")
    assert options.engine_cache_dir == StateFolder(tmp_path / "state").engine_cache
    chosen = provider_settings(choose_providers("auto", JETSON), options)
    assert chosen[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    name, trt = chosen[0]
    assert name == "TensorrtExecutionProvider"
    cache = str(StateFolder(tmp_path / "state").engine_cache)
    assert trt == {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
                   "trt_timing_cache_enable": True, "trt_timing_cache_path": cache}


def test_engine_cache_off_and_fp32_by_default(tmp_path: Path) -> None:
    settings = ModelSettings.model_validate({"bundle": str(tmp_path), "tensorrt_engine_cache": False})
    options = RuntimeOptions.from_settings(settings, tmp_path)
    assert options.engine_cache_dir is None and not options.tensorrt_fp16
    assert provider_settings(choose_providers("tensorrt", JETSON), options) == [
        ("TensorrtExecutionProvider", {"trt_fp16_enable": False}), "CPUExecutionProvider"]
    assert provider_settings(choose_providers("auto", ["CPUExecutionProvider"]), options) == ["CPUExecutionProvider"]
