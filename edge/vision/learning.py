"""Learning from the cloud (opt-in) and from people's corrections: a confident cloud answer or a
person's "it was <label>" adds the frame's embedding to the asset's few-shot memory under that label,
so the same situation is handled locally next time.

Bounded (oldest example of a label evicted beyond the cap), auditable (every add, eviction and
revert is appended to a JSON-lines log) and reversible (``revert`` by entry id or escalation key).
The learned examples merge into a vision ``Profile`` with ``merge_into``: into its few-shot arrays
and, for frames that were normal, into the memories the anomaly score comes from, patch features
included (``edge.vision.learned_normal``), which ``<asset>.patches.npz`` keeps per example.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.errors import StorageError
from edge.files import write_atomically
from edge.vision.config import LearningConfig
from edge.vision.encoder import l2_normalise
from edge.vision.enrollment import NORMAL_NAME
from edge.vision.learned_normal import add_normal_frames
from edge.vision.profile import Profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnedExample:
    id: str
    label: str
    severity: str  # ok | warning | fault
    embedding: tuple[float, ...]
    escalation_key: str
    confidence: float
    added_at: float


class LearnedMemory:
    """``<state_dir>/learned/<asset>.json`` plus ``<asset>.log.jsonl`` (the audit trail)."""

    def __init__(self, directory: Path, asset_id: str, config: LearningConfig) -> None:
        self._path = directory / f"{asset_id}.json"
        self._log_path = directory / f"{asset_id}.log.jsonl"
        self._patches_path = directory / f"{asset_id}.patches.npz"
        self._config = config
        self.asset_id = asset_id
        self._examples = self._load()

    def _load(self) -> list[LearnedExample]:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, json.JSONDecodeError) as exc:
            raise StorageError(f"learned examples {self._path} cannot be read: {exc}") from exc
        return [LearnedExample(**{**item, "embedding": tuple(item["embedding"])}) for item in raw]

    @property
    def examples(self) -> list[LearnedExample]:
        return list(self._examples)

    def learn(self, label: str, severity: str, embedding: np.ndarray, escalation_key: str, confidence: float,
              now: float | None = None, patches: np.ndarray | None = None) -> LearnedExample | None:
        """Add one example if the answer is confident enough; None when it is not (or learning is off).

        ``patches`` (N, C): the frame's patch features, kept for a normal example (the patch head's memory).
        """
        if not self._config.enabled or confidence < self._config.min_confidence:
            return None
        if any(e.escalation_key == escalation_key for e in self._examples):
            return None  # a replayed answer must not teach twice
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)  # (D,)
        if not np.isfinite(vector).all() or not vector.any():
            log.warning("not learning from %s: the embedding is empty or not finite", escalation_key)
            return None
        example = LearnedExample(uuid.uuid4().hex[:12], label, severity, tuple(float(v) for v in vector),
                                 escalation_key, confidence, time.time() if now is None else now)
        kept = [*self._examples, example]
        same = [e for e in kept if e.label == label]
        evicted = same[: max(0, len(same) - self._config.max_examples_per_label)]
        self._examples = [e for e in kept if e not in evicted]
        stored = self.patches()
        if patches is not None and label == NORMAL_NAME:
            stored[example.id] = np.asarray(patches, dtype=np.float32)
        self._save(stored)
        self._audit("add", example)
        for old in evicted:
            self._audit("evict", old)
        return example

    def revert(self, ref: str) -> int:
        """Remove examples by entry id or escalation key; returns how many were removed."""
        removed = [e for e in self._examples if ref in (e.id, e.escalation_key)]
        if removed:
            self._examples = [e for e in self._examples if e not in removed]
            self._save(self.patches())
            for example in removed:
                self._audit("revert", example)
        return len(removed)

    def audit_log(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(line) for line in self._log_path.read_text(encoding="utf-8").splitlines() if line]
        except FileNotFoundError:
            return []

    def patches(self) -> dict[str, np.ndarray]:
        """Example id -> (N, C) patch features of the kept normal examples that have them."""
        ids = {e.id for e in self._examples}
        try:
            with np.load(self._patches_path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files if name in ids}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StorageError(f"learned patch features {self._patches_path} cannot be read: {exc}") from exc

    def merge_into(self, profile: Profile) -> Profile:
        """The profile with learned examples added to its few-shot memory (dimension must match), and
        normal ones to its normal memories (global and patch)."""
        if not self._examples:
            return profile
        dim = profile.memory.shape[1]
        usable = [e for e in self._examples if len(e.embedding) == dim]
        if len(usable) < len(self._examples):
            log.warning("%d learned example(s) of %s were made by another model and are ignored",
                        len(self._examples) - len(usable), self.asset_id)
        if not usable:
            return profile
        normal = [e for e in usable if e.label == NORMAL_NAME]
        stored = self.patches() if normal and profile.patch_memory is not None else {}
        widened = add_normal_frames(profile, np.array([e.embedding for e in normal], dtype=np.float32).reshape(-1, dim),
                                    [stored.get(e.id) for e in normal])
        base_embeddings, base_ids = profile.few_shot_embeddings, profile.few_shot_label_ids
        names, severities = list(profile.few_shot_names), list(profile.few_shot_severities)
        if base_embeddings is None or base_ids is None:  # no labels enrolled: the normal memory is the ok class
            names, severities = [NORMAL_NAME], ["ok"]
            base_embeddings, base_ids = profile.memory, np.zeros(len(profile.memory), dtype=np.int64)
        for example in usable:
            if example.label not in names:
                names.append(example.label)
                severities.append(example.severity)
        if len(names) < 2:  # only "it was ok" examples and no labels: no few-shot head, the normal memory widened
            return widened
        learned = l2_normalise(np.array([e.embedding for e in usable], dtype=np.float32))  # (L, D)
        ids = np.array([names.index(e.label) for e in usable], dtype=np.int64)  # (L,)
        embeddings = np.vstack([base_embeddings, learned]).astype(np.float32)
        label_ids = np.concatenate([base_ids, ids])
        return replace(widened, few_shot_names=tuple(names), few_shot_severities=tuple(severities),
                       few_shot_embeddings=embeddings, few_shot_label_ids=label_ids)

    def _save(self, patches: dict[str, np.ndarray]) -> None:
        """The examples, then the patch features of those kept (a crash between the two leaves orphans
        in the patch file, which ``patches`` ignores, never an example pointing at nothing it needs)."""
        document = json.dumps([{**e.__dict__, "embedding": list(e.embedding)} for e in self._examples])
        kept = {e.id for e in self._examples}
        arrays: dict[str, Any] = {name: value for name, value in patches.items() if name in kept}
        try:
            write_atomically(self._path, document.encode("utf-8"))
            if patches or self._patches_path.exists():
                write_atomically(self._patches_path, lambda handle: np.savez(handle, **arrays))
        except OSError as exc:
            raise StorageError(f"learned examples {self._path} cannot be written: {exc}") from exc

    def _audit(self, action: str, example: LearnedExample) -> None:
        entry = {"at": time.time(), "action": action, "id": example.id, "label": example.label,
                 "severity": example.severity, "escalation_key": example.escalation_key,
                 "confidence": example.confidence}
        try:
            with self._log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
        except OSError as exc:
            raise StorageError(f"learning audit log {self._log_path} cannot be written: {exc}") from exc
        log.info("learned memory of %s: %s '%s' (%s)", self.asset_id, action, example.label, example.id)
