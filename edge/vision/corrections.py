"""A verdict marked wrong by a person ("it was ok", "it was <label>") becomes a labelled example in
the asset's learned memory, with who/when/why in the alert audit trail, and can be undone.

The example is the saved frame's embedding (frames are kept for non-ok verdicts) and, for "it was
OK", its patch features, which join the patch memory the anomaly score comes from
(``edge.vision.learned_normal``), stored in the same learned memory cloud answers teach
(``edge.vision.learning``) under the key ``correction-<verdict id>``; a correction of a verdict
without a frame (sensor-only, or an ok verdict) is recorded but teaches vision nothing, and the answer says so.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import ActionRefused, EdgewatchError, StorageError
from edge.store.alerts import AlertStore, Event
from edge.store.history import History
from edge.vision.config import LearningConfig
from edge.vision.enrollment import NORMAL_NAME
from edge.vision.learning import LearnedMemory

if TYPE_CHECKING:
    from edge.vision.encoder import ImageEncoder

log = logging.getLogger(__name__)

LABEL = re.compile(r"^[a-z0-9][a-z0-9_ -]{0,39}$")
SEVERITIES = ("warning", "fault")
CORRECTION_ACTIONS = ("marked_wrong", "correction_undone")  # the audit entries this module writes
Embed = Callable[[Path], tuple[np.ndarray, np.ndarray | None]]  # a saved frame -> (D,) embedding, (N, C) patches


def correction_key(verdict_id: int) -> str:
    return f"correction-{verdict_id}"


class Corrections:
    """``mark`` and ``undo`` verdict corrections; ``reload(asset)`` makes a running service use them."""

    def __init__(self, history: History, store: AlertStore, learned_dir: Path, embed: Embed | None,
                 learning: LearningConfig | None = None, reload: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.history = history
        self.store = store
        self.learned_dir = learned_dir
        self.embed = embed
        # a person's word teaches whatever the cloud-learning switch says, and at full confidence
        cap = (learning or LearningConfig.model_validate({})).max_examples_per_label
        self._learning = LearningConfig(enabled=True, min_confidence=0.0, max_examples_per_label=cap)
        self.reload = reload
        self.clock = clock
        self._lock = threading.Lock()  # two phones correcting at once must not lose one example

    def memory(self, asset: str) -> LearnedMemory:
        return LearnedMemory(self.learned_dir, asset, self._learning)

    def mark(self, verdict_id: int, label: str, by: str, note: str | None = None,
             severity: str | None = None) -> dict[str, Any]:
        """Record that verdict ``verdict_id`` was wrong: it was ``label`` ('ok' or a fault label)."""
        with self._lock:
            return self._mark(verdict_id, label, by, note, severity)

    def _mark(self, verdict_id: int, label: str, by: str, note: str | None,
              severity: str | None) -> dict[str, Any]:
        label = label.strip().lower()
        if not LABEL.match(label):
            raise ActionRefused(f"label {label!r} must be 'ok' or 1-40 lowercase letters, digits, '_', '-' or spaces")
        if label == "ok":
            label, severity = NORMAL_NAME, "ok"
        elif severity is None:
            severity = "fault"
        elif severity not in SEVERITIES:
            raise ActionRefused(f"severity {severity!r} must be one of {', '.join(SEVERITIES)} for a fault label")
        stored = self.history.get(verdict_id)
        if stored is None:
            raise ActionRefused(f"history has no verdict {verdict_id} (pruned, or never stored)")
        asset = stored.verdict.asset_id
        key = correction_key(verdict_id)
        memory = self.memory(asset)
        if any(e.escalation_key == key for e in memory.examples) or self._open(key) is not None:
            raise ActionRefused(f"verdict {verdict_id} is already corrected; undo that first")
        example_id, why = None, None
        if stored.frame is None:
            why = "the verdict has no saved frame, so vision learns nothing from it"
        elif self.embed is None:
            why = "no vision model is configured"
        else:
            try:
                embedding, patches = self.embed(stored.frame)
                example = memory.learn(label, severity, embedding, key, 1.0, now=self.clock(), patches=patches)
            except (EdgewatchError, OSError) as exc:
                raise StorageError(f"verdict {verdict_id}: its frame could not be learned: {exc}") from exc
            example_id = None if example is None else example.id
            why = None if example is not None else "the frame's embedding was empty"
        detail = {"verdict_id": verdict_id, "was": stored.verdict.condition.value, "label": label,
                  "severity": severity, "ref": key, "example_id": example_id, "not_learned": why}
        event = self.store.record(asset, "marked_wrong", by, note, detail, self.clock())
        self._reload(asset, example_id)
        return {"event_id": event.id, "asset": asset, **detail}

    def undo(self, ref: str, by: str, note: str | None = None) -> dict[str, Any]:
        """Undo a correction by its ref (``correction-<verdict id>``) or verdict id."""
        with self._lock:
            return self._undo(ref, by, note)

    def _undo(self, ref: str, by: str, note: str | None) -> dict[str, Any]:
        key = ref if ref.startswith("correction-") else correction_key(int(ref)) if ref.isdigit() else ref
        marked = self._open(key)
        if marked is None:
            raise ActionRefused(f"no correction {ref!r} to undo")
        removed = self.memory(marked.asset).revert(key)
        detail = {"ref": key, "verdict_id": marked.detail.get("verdict_id"), "examples_removed": removed}
        event = self.store.record(marked.asset, "correction_undone", by, note, detail, self.clock())
        self._reload(marked.asset, "undone" if removed else None)
        return {"event_id": event.id, "asset": marked.asset, **detail}

    def list(self, asset: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Corrections and undos, newest first (the audit trail's part about them)."""
        return [e.to_dict() for e in self.store.events(asset, limit=limit, actions=CORRECTION_ACTIONS)]

    def _open(self, key: str) -> Event | None:
        """The correction ``key`` if it stands (its latest entry is not an undo), found by its ref,
        however many events any asset logged since."""
        latest = self.store.events(limit=1, actions=CORRECTION_ACTIONS, ref=key)
        return latest[0] if latest and latest[0].action == "marked_wrong" else None

    def _reload(self, asset: str, changed: str | None) -> None:
        if changed is None or self.reload is None:
            return
        try:
            self.reload(asset)
        except EdgewatchError as exc:  # stored; the next start loads it
            log.warning("asset %s: corrected examples not reloaded: %s", asset, exc)


def frame_embedder(encoder: ImageEncoder) -> Embed:
    """Embed a saved frame with the running model, as enrollment does: its embedding and patch features."""
    from edge.vision.pipeline import embed_many

    def embed(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        embeddings, patches = embed_many(encoder, [path])
        return embeddings[0], None if patches is None else patches[0]

    return embed
