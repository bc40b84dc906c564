"""The per-asset profile written by ``edgewatch enroll``: what normal looks like, to this model.

One ``.npz`` file (loaded with ``allow_pickle=False``, so a profile can never run code) holding
the arrays plus a JSON metadata document. Embeddings only make sense to the model that produced
them, so the profile records the bundle's fingerprint and refuses to load against another bundle.
Writes are atomic: a temporary file in the same folder, fsync, rename.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle.load import Bundle
from edge.errors import InputError, StorageError, UsageError
from edge.files import write_atomically
from edge.vision.calibration import PlattMap
from edge.vision.local_scale import LocalScale

PROFILE_VERSION = 1
_META_KEY = "meta_json"


def bundle_fingerprint(bundle: Bundle) -> str:
    """sha256 over what determines an embedding: the image model's bytes and the preprocessing."""
    manifest = bundle.manifest
    model_hash = next(entry.sha256 for entry in manifest.files if entry.path == manifest.image_model.file)
    document = json.dumps(
        {"model": model_hash, "preprocessing": manifest.preprocessing.model_dump(mode="json"),
         "embedding": manifest.image_model.embedding_output, "patches": manifest.image_model.patch_output,
         **({"features": manifest.image_model.feature_outputs} if manifest.image_model.feature_outputs else {})},
        sort_keys=True,
    )
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True)
class Profile:
    bundle_fingerprint: str
    memory: np.ndarray  # (M, D) float32 unit embeddings of normal frames
    calibration: dict[str, np.ndarray]  # head name -> (n,) scores of held-out normal frames
    patch_memory: np.ndarray | None = None  # (P, C) float32 coreset of normal patch tokens
    local_scale: LocalScale | None = None  # what the patch head's distances are divided by (None: raw)
    patch_top_share: float = 0.0  # frame score: mean of the worst share of patches (0: the worst one)
    few_shot_names: tuple[str, ...] = ()
    few_shot_severities: tuple[str, ...] = ()
    few_shot_embeddings: np.ndarray | None = None  # (E, D) float32
    few_shot_label_ids: np.ndarray | None = None  # (E,) int64 indices into few_shot_names
    knn_k: int = 3
    alternative_shape: float = 0.05  # the tail model's assumed Beta(a, 1), used without a Platt map
    platt: PlattMap | None = None  # fitted on labelled abnormal frames at enrollment
    prior: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)  # counts, thresholds, created_at: for people

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"memory": self.memory}
        out.update({f"calibration_{head}": scores for head, scores in self.calibration.items()})
        if self.patch_memory is not None:
            out["patch_memory"] = self.patch_memory
        if self.local_scale is not None:
            out["scale_embeddings"] = self.local_scale.embeddings
            out["scale_scores"] = self.local_scale.scores
        if self.few_shot_embeddings is not None and self.few_shot_label_ids is not None:
            out["few_shot_embeddings"] = self.few_shot_embeddings
            out["few_shot_label_ids"] = self.few_shot_label_ids
        return out

    def meta(self) -> dict[str, Any]:
        return {
            "profile_version": PROFILE_VERSION,
            "bundle_fingerprint": self.bundle_fingerprint,
            "heads": sorted(self.calibration),
            "few_shot_names": list(self.few_shot_names),
            "few_shot_severities": list(self.few_shot_severities),
            "knn_k": self.knn_k,
            "scale_neighbours": None if self.local_scale is None else self.local_scale.neighbours,
            "patch_top_share": self.patch_top_share,
            "alternative_shape": self.alternative_shape,
            "platt": None if self.platt is None else {"slope": self.platt.slope, "intercept": self.platt.intercept,
                                                      "head": self.platt.head},
            "prior": self.prior,
            "info": self.info,
        }


def save_profile(profile: Profile, path: Path) -> None:
    """Write atomically: a crash or full disk leaves the previous profile in place."""
    path = path.resolve()
    arrays: dict[str, Any] = {_META_KEY: np.frombuffer(json.dumps(profile.meta()).encode(), dtype=np.uint8),
                              **profile.arrays()}
    try:
        write_atomically(path, lambda handle: np.savez(handle, **arrays))
    except OSError as exc:
        raise StorageError(f"profile {path} could not be written: {exc}") from exc


def check_replaceable(path: Path, force: bool) -> None:
    """Before enrolling into ``path``: a missing file is fine, an existing profile only with ``force``, and
    anything else (a config, a key, a folder) never: a typo in ``--out`` must not destroy a file."""
    if not path.exists():
        return
    if not (path.is_file() and _is_profile(path)):
        raise UsageError(f"--out {path} exists and is not an edgewatch profile: it is never overwritten; "
                         "choose another --out")
    if not force:
        raise UsageError(f"--out {path} already holds a profile: add --force to replace it")


def _is_profile(path: Path) -> bool:
    """An .npz whose metadata entry is there (any version: an old profile may be replaced)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return f"{_META_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_profile(path: Path, bundle: Bundle | None = None) -> Profile:
    """Read a profile; with ``bundle``, refuse one enrolled with a different model."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError as exc:
        raise InputError(f"profile {path} does not exist (create it with 'edgewatch enroll')") from exc
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"profile {path} is not a readable edgewatch profile: {exc}") from exc
    try:
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode())
        version = meta["profile_version"]
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"profile {path} has no valid metadata; re-run 'edgewatch enroll'") from exc
    if version != PROFILE_VERSION:
        raise InputError(f"profile {path} is version {version!r}; this edgewatch reads {PROFILE_VERSION}, re-enroll")
    if bundle is not None and meta["bundle_fingerprint"] != bundle_fingerprint(bundle):
        raise InputError(
            f"profile {path} was enrolled with a different model bundle than {bundle.root}; "
            "embeddings are not comparable across models, re-run 'edgewatch enroll' with this bundle"
        )
    try:
        return Profile(
            bundle_fingerprint=meta["bundle_fingerprint"],
            memory=arrays["memory"].astype(np.float32, copy=False),
            calibration={head: arrays[f"calibration_{head}"].astype(np.float64) for head in meta["heads"]},
            patch_memory=arrays.get("patch_memory"),
            local_scale=_local_scale(arrays, meta.get("scale_neighbours"), path),
            patch_top_share=_top_share(meta.get("patch_top_share", 0.0), path),
            few_shot_names=tuple(meta["few_shot_names"]),
            few_shot_severities=tuple(meta["few_shot_severities"]),
            few_shot_embeddings=arrays.get("few_shot_embeddings"),
            few_shot_label_ids=arrays.get("few_shot_label_ids"),
            knn_k=int(meta["knn_k"]),
            alternative_shape=float(meta["alternative_shape"]),
            platt=_platt_map(meta.get("platt"), meta["heads"], path),
            prior=float(meta["prior"]),
            info=dict(meta.get("info", {})),
        )
    except KeyError as exc:
        raise InputError(f"profile {path} is missing {exc}; re-run 'edgewatch enroll'") from exc


def _local_scale(arrays: dict[str, np.ndarray], neighbours: Any, path: Path) -> LocalScale | None:
    """The stored local scale, checked; None for a profile enrolled before it existed."""
    if neighbours is None:
        return None
    embeddings, scores = arrays.get("scale_embeddings"), arrays.get("scale_scores")
    if (embeddings is None or scores is None or embeddings.ndim != 2 or scores.shape != (embeddings.shape[0],)
            or not isinstance(neighbours, int) or not 1 <= neighbours <= len(scores)
            or not np.isfinite(scores).all() or (scores < 0).any()):
        raise InputError(f"profile {path} has an invalid patch-head scale; re-run 'edgewatch enroll'")
    return LocalScale(embeddings.astype(np.float32, copy=False), scores.astype(np.float64), neighbours)


def _top_share(stored: Any, path: Path) -> float:
    """The stored frame-score share of patches, checked (absent in profiles enrolled before it: the worst one)."""
    if isinstance(stored, bool) or not isinstance(stored, (int, float)) or not 0.0 <= stored < 1.0:
        raise InputError(f"profile {path} has an invalid patch_top_share {stored!r}; re-run 'edgewatch enroll'")
    return float(stored)


def _platt_map(stored: Any, heads: list[str], path: Path) -> PlattMap | None:
    """The stored Platt map, checked: finite numbers, and a head the profile calibrates."""
    if stored is None:
        return None
    problem = f"profile {path} has an invalid p_anomaly map {stored!r}; re-run 'edgewatch enroll'"
    try:
        platt = PlattMap(slope=float(stored["slope"]), intercept=float(stored["intercept"]), head=str(stored["head"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(problem) from exc
    if not (np.isfinite(platt.slope) and np.isfinite(platt.intercept)) or platt.head not in heads:
        raise InputError(problem)
    return platt
