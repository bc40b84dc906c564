"""``edgewatch check``: one image (and a sensors snapshot) -> fused verdict, escalated when the policy says so.

The service's own check, once: an ``Asset`` for the one image, built with the service's builders
(vision stage, frame health, fusion), is judged by ``edge.service.check.assess`` as the loop judges
a camera frame, then escalated at once (``Escalator.consider``) instead of queued, so a user trying
a config by hand gets the p-value the running service would. Differences a lone check needs: the
frame is judged alone (no earlier frames to smooth over) and the verdict is not held back by
hysteresis (no earlier checks to wait for).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge.cli.options import add_config, choose_asset, handles

if TYPE_CHECKING:
    from edge.bundle.load import Bundle
    from edge.evidence import Evidence, Verdict
    from edge.frames.frame import Frame
    from edge.fusion.fuse import FusionResult
    from edge.sensors.base import Reading
    from edge.sensors.config import SensorBase
    from edge.service.cameras import CameraVision
    from edge.service.fusion_stage import FusionWithPersistence
    from edge.service.stages import Asset
    from edge.settings import AssetConfig, Config
    from edge.sources.base import CameraHealth
    from edge.sources.config import CameraBase
    from edge.vision.evidence import Decision
    from edge.vision.pipeline import VisionResult, VisionScorer
    from edge.vision.profile import Profile

_DEFAULT_ASSET = "asset"
_DEFAULT_CAMERA = "camera"


def add_parser(sub: argparse._SubParsersAction, parser_class: type[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="Score one image (and sensor readings) and print the verdict.",
        description="Run every vision head on one image, fuse with sensor readings when given, "
        "and escalate to the cloud model when the policy says so (or --escalate).",
    )
    p.add_argument("--bundle", required=True, type=Path, help="Model bundle folder.")
    p.add_argument("--profile", type=Path, help="Asset profile from 'edgewatch enroll'.")
    p.add_argument("--image", required=True, type=Path, help="Image file to score.")
    p.add_argument("--sensors", type=Path, help="Sensor readings JSON (see docs/sensors-json.md).")
    add_config(p, "Config file for fusion and escalation settings.")
    p.add_argument("--asset", help="Asset id in --config whose settings apply.")
    p.add_argument("--escalate", action="store_true", help="Ask the cloud model whatever the local confidence.")
    p.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
    handles(p, "edge.cli.check:check")


class ImageFile:
    """A camera that shows one image file, decoded as cameras decode a frame (the frame decoder, the
    camera's ``resize_max_px``). An unreadable file is the user's input error, not a camera outage."""

    def __init__(self, path: Path, camera: CameraBase, timestamp: float) -> None:
        self.name = camera.name
        self.path = path
        self.max_px = camera.resize_max_px
        self.timestamp = timestamp
        self._grabbed = False

    def grab(self) -> Frame:
        from edge.frames.decode import decode_frame
        from edge.frames.frame import Frame, downscale

        pixels = downscale(decode_frame(self.path, str(self.path), self.max_px), self.max_px)  # (H, W, 3) uint8
        self._grabbed = True
        return Frame(pixels, self.timestamp, self.name)

    def health(self) -> CameraHealth:
        from edge.sources.base import CameraHealth

        frames = int(self._grabbed)
        return CameraHealth(self.name, True, frames, 0, self.timestamp if frames else None, None)

    def close(self) -> None:
        """Nothing stays open: the file is read whole on grab."""


class SnapshotSensors:
    """The sensor stage of a one-off check: the readings of a sensors JSON file, judged once."""

    def __init__(self, path: Path, configured: Sequence[SensorBase], timestamp: float) -> None:
        self.path = path
        self.configured = configured
        self.timestamp = timestamp

    def readings(self) -> Mapping[str, Reading | None]:
        """Only trigger watches read these, and a one-off check has none: it is running already."""
        return {}

    def evidence(self, learn: bool = True) -> list[Evidence]:
        """Judged against the configured sensors' settings; a snapshot has no baseline to learn into."""
        from edge.sensors import snapshot_file  # scipy's signal stack (~60 MB) only when there are readings

        return snapshot_file.evidence(self.path, self.configured, self.timestamp)

    def close(self) -> None:
        """Nothing stays open: the file is read whole when judged."""


def check(args: argparse.Namespace) -> int:
    import time

    from edge.bundle.load import load_bundle
    from edge.escalation.config import EscalationConfig
    from edge.evidence import dumps
    from edge.service.check import assess
    from edge.settings import load_config
    from edge.vision.evidence import decide, vision_json
    from edge.vision.profile import load_profile

    config = load_config(args.config) if args.config else None
    asset = choose_asset(config, args.asset)
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
        one, vision, fusion = _one_image(args, config, asset, asset_id, bundle, profile, now)
        found = assess(one, time.time)
        fused = fusion.last
        assert fused is not None  # assess fused the evidence
        if escalator is not None:
            from PIL import Image

            images = [Image.fromarray(frame.image) for frame in found.frames]  # as the camera decoded it
            verdict = escalator.consider(fused, frames=images, on_demand=args.escalate, embedding=found.embedding())
        elif args.escalate:
            from edge.escalation.escalator import apply_answer

            why = "escalation is off: enable it in the config's 'escalation' section and pass --config"
            verdict = apply_answer(found.verdict, {"status": "disabled", "why": why})
        else:
            verdict = found.verdict
    finally:
        if escalator is not None:
            escalator.close()

    seen = vision.last_result(one.cameras[0].name)  # None: the frame was unfit, so it was not scored
    document = {**verdict.to_dict(), "probabilities": fused.probabilities(), "coverage": round(fused.coverage, 4),
                "image": str(args.image), "vision": vision_json(seen) if seen is not None else None}
    if args.json:
        print(dumps(document).decode())  # strict JSON: NaN and infinity are null
    else:
        if seen is not None:
            print(describe_vision(seen, decide(seen)))
        print(describe(verdict, fused))
    return 0


def _one_image(args: argparse.Namespace, config: Config | None, asset: AssetConfig | None, asset_id: str,
               bundle: Bundle, profile: Profile | None,
               now: float) -> tuple[Asset, CameraVision, FusionWithPersistence]:
    """The asset of this one check: the image as its (first) camera, the snapshot as its sensors."""
    from edge.fusion.config import FusionConfig
    from edge.service.cameras import build_frame_health
    from edge.service.fusion_stage import FusionWithPersistence
    from edge.service.stages import Asset
    from edge.sources.config import CameraBase
    from edge.vision.encoder import RuntimeOptions
    from edge.vision.pipeline import VisionScorer

    camera = asset.cameras[0] if asset and asset.cameras else CameraBase(name=_DEFAULT_CAMERA)
    # the model loads before the frame is decoded: decoding first fragments the heap under
    # onnxruntime's allocations (+30 MB peak RSS for ViT-B/32)
    scorer = VisionScorer.load(bundle, profile, RuntimeOptions.for_one_frame(config.model if config else None))
    grabber, vision = image_camera(args.image, camera, scorer, now)
    fusion = FusionWithPersistence(asset_id, asset.fusion if asset else FusionConfig(), hysteresis=False)
    sensors = SnapshotSensors(args.sensors, asset.sensors if asset else (), now) if args.sensors else None
    one = Asset(id=asset_id, check_interval_s=0.0, fusion=fusion, cameras=[grabber],
                frame_health=build_frame_health([camera]), vision=vision, sensors=sensors)
    return one, vision, fusion


def image_camera(image: Path, camera: CameraBase, scorer: VisionScorer,
                 now: float) -> tuple[ImageFile, CameraVision]:
    """The image as ``camera`` would deliver it, and the service's vision stage judging it alone
    (there are no earlier frames to smooth over)."""
    from edge.service.cameras import build_vision

    return ImageFile(image, camera, now), build_vision(scorer, [camera], one_frame=True)


def describe_vision(result: VisionResult, decision: Decision) -> str:
    """The vision part of the human output: every head, then the calibrated decision."""
    lines = []
    if result.anomaly_score is not None:
        lines.append(f"anomaly score  {result.anomaly_score:.4f}")
    for head, value in result.heads.items():
        lines.append(f"  {head:<16}{value:.4f}")
    if result.p_anomaly is not None:
        lines.append(f"p_anomaly      {result.p_anomaly:.3f} (p-value {result.p_value:.3g})")
    for title, probabilities in (("zero-shot", result.labels), ("few-shot", result.few_shot)):
        if probabilities:
            lines.append(f"{title}:")
            for name, p in sorted(probabilities.items(), key=lambda item: -item[1]):
                lines.append(f"  {name:<24}{p:.3f}")
    condition = decision.condition.value if decision.condition else "no opinion"
    lines.append(f"vision verdict {condition} (confidence {decision.confidence:.2f})")
    lines += [f"  - {reason}" for reason in decision.reasons]
    timings = ", ".join(f"{name} {ms:.1f} ms" for name, ms in result.timings_ms.items())
    lines.append(f"timings        {timings}")
    return "\n".join(lines)


def describe(verdict: Verdict, fused: FusionResult) -> str:
    """The human form: verdict, probabilities and reasons (the cloud's part is among the reasons)."""
    p = fused.probabilities()
    lines = [f"{verdict.asset_id}: {verdict.condition.value.upper()} (confidence {verdict.confidence:.2f}; "
             f"p ok {p['ok']:.2f} / warning {p['warning']:.2f} / fault {p['fault']:.2f}, "
             f"evidence coverage {fused.coverage:.0%})"]
    lines += [f"  - {reason}" for reason in verdict.reasons]
    return "\n".join(lines)

