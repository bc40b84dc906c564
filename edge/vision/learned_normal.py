"""Frames a person marked normal after enrollment ("it was OK"), added to every memory that judges a frame.

The verdict follows the patch head, so a false alarm is only fixed when the frame's *patches* join the
patch memory: its global embedding alone leaves the patch that raised the alarm as far from normal
as before. The patch memory stays bounded and a coreset: the greedy k-center selection that built it
is continued over the new frame's patches (each pick the patch farthest from everything kept so
far) until every patch of the frame lies within half a typical normal frame's worst-patch distance
of the memory, at most ``PATCHES_PER_FRAME`` of them: patches the memory already covers are not
added, the frame's unusual region is. The frame also joins the local scale's reference frames with its
score against the memory without it (its out-of-fold score, as every enrolled frame has), so frames
like it are judged on its scale; and its embedding joins the global k-NN memory.

Nothing is written: the enrolled profile stays as enrolled, and undoing a correction is merging
without it (``edge.vision.learning``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge.vision.baseline import patch_scores
from edge.vision.encoder import l2_normalise
from edge.vision.local_scale import LocalScale
from edge.vision.profile import Profile

# A quarter of a 28 x 28 EfficientNet-Lite0 grid (784 patches): a defect-sized region spans a few dozen.
PATCHES_PER_FRAME = 196
COVERED = 0.5  # of the typical normal worst-patch distance: a patch this close to the memory is normal


def continue_coreset(memory: np.ndarray, candidates: np.ndarray, count: int, radius: float = 0.0) -> np.ndarray:
    """(M, C) memory, (P, C) new unit patches -> indices of up to ``count`` of them, greedy k-center
    continued from ``memory``: each pick is the candidate farthest from the memory and the earlier
    picks, until none is farther than ``radius`` (cosine distance)."""
    nearest = 1.0 - (candidates @ memory.T).max(axis=1)  # (P,) cosine distance to the memory
    chosen: list[int] = []
    for _ in range(min(count, len(candidates))):
        pick = int(np.argmax(nearest))
        if nearest[pick] <= radius:
            break
        chosen.append(pick)
        np.minimum(nearest, 1.0 - candidates @ candidates[pick], out=nearest)
    return np.asarray(chosen, dtype=np.int64)


def add_normal_frames(profile: Profile, embeddings: np.ndarray, patches: list[np.ndarray | None]) -> Profile:
    """The profile judging ``embeddings`` (L, D) and their (N, C) patch features (None: not stored) as normal."""
    if len(embeddings) == 0:
        return profile
    unit = l2_normalise(np.asarray(embeddings, dtype=np.float32))
    merged = replace(profile, memory=np.vstack([profile.memory, unit]).astype(np.float32))
    if profile.patch_memory is None:
        return merged
    patch_memory, scale = profile.patch_memory, profile.local_scale
    typical = float(np.median(profile.calibration.get("patchcore", np.zeros(1))))  # in the scale's units
    for embedding, frame_patches in zip(unit, patches, strict=True):
        if frame_patches is None or frame_patches.shape[-1] != patch_memory.shape[1]:
            continue
        frame_patches = np.asarray(frame_patches, dtype=np.float32)
        radius = COVERED * typical * (1.0 if scale is None else float(scale.of(embedding[None])[0]))
        if scale is not None:
            # (1,) out of fold: the memory without it
            score = patch_scores(frame_patches[None], patch_memory, profile.patch_top_share)
            scale = LocalScale(np.vstack([scale.embeddings, embedding[None]]).astype(np.float32),
                               np.concatenate([scale.scores, score]), scale.neighbours)
        picks = continue_coreset(patch_memory, frame_patches, PATCHES_PER_FRAME, radius)
        patch_memory = np.vstack([patch_memory, frame_patches[picks]]).astype(np.float32)
    return replace(merged, patch_memory=patch_memory, local_scale=scale)
