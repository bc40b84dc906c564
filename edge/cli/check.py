"""``edgewatch check``: one image (and a sensors snapshot) -> fused verdict, escalated when the policy says so.

The same stages as the service, once: vision heads and camera health, sensor analytics, fusion,
escalation policy and, when enabled, the cloud model — so a user can try a config by hand.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np
from PIL import Image

from edge.bundle.load import load_bundle
from edge.cli.vision import describe as describe_vision
from edge.errors import UsageError
from edge.escalation.config import EscalationConfig
from edge.evidence import Evidence, Verdict, dumps
from edge.frames.decode import decode_frame
from edge.frames.frame import Frame, downscale
from edge.fusion.config import FusionConfig
from edge.fusion.fuse import FusionResult, fuse
from edge.settings import AssetConfig, Config, load_config
from edge.sources.config import CameraBase, CameraHealthSettings
from edge.sources.health import FrameHealth
from edge.vision.encoder import RuntimeOptions
from edge.vision.evidence import decide, to_evidence, vision_json
from edge.vision.pipeline import VisionResult, VisionScorer
from edge.vision.profile import Profile, load_profile

log = logging.getLogger(__name__)

_DEFAULT_ASSET = "asset"
DEFAULT_RESIZE_MAX_PX: int = CameraBase.model_fields["resize_max_px"].default


def _asset(config: Config | None, asset_id: str | None) -> AssetConfig | None:
    if config is None:
        if asset_id is not None:
            raise UsageError("--asset needs --config (the file that defines the asset)")
        return None
    if asset_id is None:
        if len(config.assets) == 1:
            return config.assets[0]
        ids = ", ".join(asset.id for asset in config.assets)
        raise UsageError(f"the config has several assets: choose one with --asset ({ids})")
    for asset in config.assets:
        if asset.id == asset_id:
            return asset
    ids = ", ".join(asset.id for asset in config.assets)
    raise UsageError(f"no asset '{asset_id}' in {config.site} config (assets: {ids})")


def check(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else None
    asset = _asset(config, args.asset)
    asset_id = asset.id if asset else _DEFAULT_ASSET
    escalation = config.escalation if config else EscalationConfig()
    now = time.time()

    bundle = load_bundle(args.bundle, trusted_keys=config.model.trusted_keys if config and config.model else ())
    profile_path = args.profile or (asset.profile if asset else None)
    profile = load_profile(profile_path, bundle) if profile_path else None
    escalator = None
    if escalation.enabled and config is not None:
        from edge.escalation.escalator import AssetInfo, Escalator  # the cloud SDK only when it is used

        info = {asset_id: AssetInfo(asset.name, asset.allow_images_to_cloud, asset.fusion) if asset else AssetInfo()}
        escalator = Escalator(escalation, config.state_dir, assets=info)
    try:
        if escalator is not None and profile is not None and escalation.learning.enabled:
            profile = escalator.memory(asset_id).merge_into(profile)
        fused, vision, embedding, image = _fuse(args, config, asset, asset_id, bundle, profile, now)
        if escalator is not None:
            verdict = escalator.consider(fused, frames=[image], on_demand=args.escalate, embedding=embedding)
        elif args.escalate:
            from edge.escalation.escalator import apply_answer

            why = "escalation is off: enable it in the config's 'escalation' section and pass --config"
            verdict = apply_answer(fused.verdict, {"status": "disabled", "why": why})
        else:
            verdict = fused.verdict
    finally:
        if escalator is not None:
            escalator.close()

    vision_document = vision_json(vision)
    document = {**verdict.to_dict(), "probabilities": fused.probabilities(), "coverage": round(fused.coverage, 4),
                "image": str(args.image), "vision": vision_document}
    if args.json:
        print(dumps(document).decode())  # strict JSON: NaN and infinity are null
    else:
        print(describe_vision(vision, decide(vision)))
        print(describe(verdict, fused))
    return 0


def _fuse(args: argparse.Namespace, config: Config | None, asset: AssetConfig | None, asset_id: str,
          bundle: Any, profile: Profile | None, now: float) -> tuple[FusionResult, VisionResult, np.ndarray, Any]:
    """Vision (plus camera health) and sensor evidence for this one check, fused."""
    options = RuntimeOptions.for_one_frame(config.model if config else None)
    camera = asset.cameras[0] if asset and asset.cameras else None
    camera_name = camera.name if camera else "camera"
    scorer = VisionScorer.load(bundle, profile, options)
    prepared, encoded = scorer.embed(args.image)
    result = scorer.score_encoded(prepared, encoded)
    evidence: list[Evidence] = [to_evidence(result, camera_name, now)]
    # The frame for camera health and the cloud is opened only now: decoding it before the model
    # loads fragments the heap under onnxruntime's allocations (+30 MB peak RSS for ViT-B/32).
    # Decoded as the service's cameras decode a frame: the same decoder, cap and downscaling.
    max_px = camera.resize_max_px if camera else DEFAULT_RESIZE_MAX_PX
    pixels = downscale(decode_frame(args.image, str(args.image), max_px), max_px)  # (H, W, 3) uint8
    health = FrameHealth(camera_name, camera.health if camera else CameraHealthSettings())
    unfit = health.check(Frame(pixels, now, camera_name))
    image = Image.fromarray(pixels)
    if unfit is not None:
        evidence.append(unfit)
    if args.sensors:
        from edge.sensors import snapshot_file  # scipy's signal stack (~60 MB) only when there are sensor readings

        evidence += snapshot_file.evidence(args.sensors, asset.sensors if asset else (), now)
    fusion = asset.fusion if asset else FusionConfig()
    return fuse(asset_id, evidence, fusion, now), result, encoded.embedding, image


def describe(verdict: Verdict, fused: FusionResult) -> str:
    """The human form: verdict, probabilities and reasons (the cloud's part is among the reasons)."""
    p = fused.probabilities()
    lines = [f"{verdict.asset_id}: {verdict.condition.value.upper()} (confidence {verdict.confidence:.2f}; "
             f"p ok {p['ok']:.2f} / warning {p['warning']:.2f} / fault {p['fault']:.2f}, "
             f"evidence coverage {fused.coverage:.0%})"]
    lines += [f"  - {reason}" for reason in verdict.reasons]
    return "\n".join(lines)
