"""Gather the evaluation's checks: a service run's stored verdicts, the labels, and the oracle's answers.

A run of ``edgewatch run`` stores each check's local verdict and, in its ``escalation`` object,
whether the policy asked the cloud. The evaluation asks the oracle cloud about *every* check,
with the request the device itself builds (same text, same frame, same detail), once per priced
model, so the always-cloud arm, the policy arm and the costs all come from the same answers and
from usage billed as the provider would.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edge.errors import CloudError, InputError
from edge.escalation.budget import price
from edge.escalation.client import CloudClient
from edge.escalation.config import EscalationConfig, PolicyConfig
from edge.escalation.images import difference_hash, prepare
from edge.escalation.local_server import LocalCloudServer
from edge.escalation.policy import Decision
from edge.escalation.request import build_request
from edge.evaluation import whatif
from edge.evaluation.figures import CheckOutcome
from edge.evaluation.labels import Labels, Truth, truth_of_check
from edge.evaluation.oracle import Oracle, labelled_frames
from edge.evidence import Condition, Verdict
from edge.frames.decode import open_frame
from edge.fusion.fuse import fuse
from edge.settings import AssetConfig, Config
from edge.sources.config import FolderCamera
from edge.store.layout import open_history

log = logging.getLogger(__name__)

MODELS = ("gpt-4o", "gpt-4o-mini")
_ASKED = "evaluation: every check is asked, to compare with the policy"
_SENT = ("answered", "queued", "failed")  # escalation statuses for which a request was made
_HELD_BACK = ("skipped", "budget_exceeded")  # the policy's triggers fired, but no request was made


def camera_folder(asset: AssetConfig) -> Path | None:
    """The folder the asset's first folder camera replays (None: it has none)."""
    folders = [camera.path for camera in asset.cameras if isinstance(camera, FolderCamera)]
    return folders[0] if folders else None


def oracle_for(labels: Labels, camera_folders: Mapping[str, Path | None], *, error_rate: float = 0.0,
               seed: int = 0) -> Oracle:
    """The oracle answering from ``labels``; ``camera_folders``: each asset's folder camera."""
    frames = {asset_id: labelled_frames({n: Condition(c) for n, c in item.frames.items()}, folder)
              for asset_id, item in labels.assets.items()
              if item.frames and (folder := item.folder(camera_folders.get(asset_id))) is not None}
    sensors = {asset_id: Condition(item.sensors) for asset_id, item in labels.assets.items()}
    return Oracle(frames, sensors, error_rate=error_rate, seed=seed)


def collect(config: Config, labels: Labels, *, error_rate: float = 0.0, seed: int = 0,
            models: Sequence[str] = MODELS, policy: PolicyConfig | None = None,
            progress: Callable[[str], None] = log.info) -> list[CheckOutcome]:
    """One outcome per stored verdict of every labelled asset, in check order. With ``policy``, which
    checks were escalated is decided again by it (edge/evaluation/whatif.py), not read from the run."""

    assets = {asset.id: asset for asset in config.assets}
    unknown = sorted(set(labels.assets) - set(assets))
    if unknown:
        raise InputError(f"the labels name assets the config does not have: {', '.join(unknown)}")
    missing = sorted(set(models) - set(config.escalation.pricing))
    if missing:
        raise InputError(f"no pricing for {', '.join(missing)}: add them under 'escalation.pricing'")
    if not config.state.history.is_file():  # opening it would create an empty one
        raise InputError(f"no history in {config.state_dir}: run 'edgewatch run' on the recordings first")
    folders = {asset_id: camera_folder(assets[asset_id]) for asset_id in labels.assets}
    oracle = oracle_for(labels, folders, error_rate=error_rate, seed=seed)

    with open_history(config.state, config.history) as history:
        stored = {asset_id: sorted(history.verdicts(asset=asset_id, limit=1_000_000), key=lambda s: s.id)
                  for asset_id in labels.assets}
    checks = [(asset_id, truth_of_check(labels.assets[asset_id], folders[asset_id], index), entry.verdict)
              for asset_id, verdicts in stored.items() for index, entry in enumerate(verdicts)]
    if not checks:
        raise InputError(f"the history in {config.state_dir} holds no verdict of the labelled assets: "
                         "run 'edgewatch run' on the recordings first")
    decisions: list[Decision | None] = [None] * len(checks)
    if policy is not None:
        decisions = list(whatif.redecide([whatif.Check(verdict, _frame_hash(truth.frame))
                                          for _, truth, verdict in checks], policy,
                                         {asset_id: assets[asset_id].fusion for asset_id in labels.assets}))
    progress(f"asking the oracle cloud about each of {len(checks)} checks at {', '.join(models)} prices")
    with LocalCloudServer(answer=oracle) as cloud:
        settings = {model: _escalation_for(config.escalation, cloud.url, model) for model in models}
        clients = {model: (each, CloudClient(each, api_key="oracle")) for model, each in settings.items()}
        try:
            return [_outcome(assets[asset_id], labels.assets[asset_id].case, truth, verdict, decision, clients)
                    for (asset_id, truth, verdict), decision in zip(checks, decisions, strict=True)]
        finally:
            for _, client in clients.values():
                client.close()


def _frame_hash(frame: Path | None) -> int | None:
    if frame is None:
        return None
    with open_frame(frame, f"frame {frame}") as image:
        return difference_hash(image)


def _escalation_for(escalation: EscalationConfig, url: str, model: str) -> EscalationConfig:
    return escalation.model_copy(update={"base_url": url, "model": model, "max_retries": 0})


def _outcome(asset: AssetConfig, case: str, truth: Truth, verdict: Verdict, redecided: Decision | None,
             clients: dict[str, tuple[EscalationConfig, CloudClient]]) -> CheckOutcome:
    """Ask the oracle about one check, once per model (``clients``: model -> its settings and client).
    ``redecided``: what another policy would have done (None: what the run's policy did)."""
    escalation = dict(verdict.escalation or {})
    triggers = [str(t) for t in escalation.get("triggers", ()) or ()] or [_ASKED]
    answers = {}
    for model, (settings, client) in clients.items():
        images = []
        if asset.allow_images_to_cloud and truth.frame is not None and settings.max_images:
            with open_frame(truth.frame, f"frame {truth.frame}") as frame:
                images = [prepare(frame, settings.detail, settings.jpeg_quality)]
        request = build_request(asset.id, asset.name, verdict, triggers, images, settings)
        try:
            answers[model] = client.ask(request, f"eval-{uuid.uuid4().hex}")
        except CloudError as exc:
            raise InputError(f"the oracle cloud failed on a check of {asset.id}: {exc}") from exc
    first = answers[next(iter(clients))]
    floor = fuse(asset.id, list(verdict.evidence), asset.fusion, verdict.timestamp).rule_floor
    status = escalation.get("status")
    return CheckOutcome(
        asset_id=asset.id,
        case=case,
        truth=truth.condition,
        local=verdict.condition,
        local_confidence=verdict.confidence,
        escalated=status in _SENT if redecided is None else redecided.escalate,
        cloud=Condition(first.answer.condition),
        cloud_confidence=first.answer.confidence,
        floor=floor,
        cost_usd={model: price(clients[model][0].model_pricing, reply.input_tokens, reply.output_tokens).usd
                  for model, reply in answers.items()},
        held_back=status in _HELD_BACK if redecided is None else redecided.skipped is not None,
    )
