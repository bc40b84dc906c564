"""The oracle cloud: a local OpenAI-compatible server that answers from the labels, wrong at a set rate.

It measures what escalating is worth without paying a provider or trusting the board's own
evidence: the answer is the labelled truth of the asset (named in the request) and of the frame
attached (found by nearest thumbnail among the asset's labelled frames), flipped on a fixed,
seeded share of frames to stand for a cloud model that is sometimes wrong. A request without an
image gets the sensors' truth only: a cloud that sees no frame cannot know what the camera shows.
Token usage is billed as the provider would bill the requested model (edge/escalation/local_server.py).
"""

from __future__ import annotations

import base64
import io
import logging
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge.errors import InputError
from edge.escalation.local_server import RecordedRequest
from edge.evidence import Condition
from edge.frames.decode import open_frame

log = logging.getLogger(__name__)

_ASSET_ID = re.compile(r"^Asset: .* \(id (?P<asset>[^)]+)\)\.$", re.MULTILINE)
_THUMBNAIL_PX = 16  # grey; JPEG re-encoding and downscaling move it little, another cell moves it a lot
ORACLE_CONFIDENCE = 0.95  # what the oracle claims: above most local verdicts, so its answer usually wins


@dataclass(frozen=True)
class LabelledFrame:
    name: str
    condition: Condition
    thumbnail: np.ndarray  # (16, 16) float32 grey, 0..255


def thumbnail(image: Image.Image) -> np.ndarray:
    resized = image.convert("L").resize((_THUMBNAIL_PX, _THUMBNAIL_PX), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)  # (16, 16)


def labelled_frames(frames: Mapping[str, Condition], folder: Path) -> list[LabelledFrame]:
    """Load the thumbnails of an asset's labelled frames (an unreadable frame is an InputError)."""
    found = []
    for name, condition in sorted(frames.items()):
        with open_frame(folder / name, f"labelled frame {folder / name}") as image:
            found.append(LabelledFrame(name, condition, thumbnail(image)))
    return found


class Oracle:
    """Answers a chat-completions request from the labels: ``LocalCloudServer(answer=Oracle(...))``."""

    def __init__(self, frames: Mapping[str, Sequence[LabelledFrame]], sensors: Mapping[str, Condition], *,
                 error_rate: float = 0.0, seed: int = 0, confidence: float = ORACLE_CONFIDENCE) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise InputError(f"the oracle's error rate must be between 0 and 1, got {error_rate}")
        self._frames = {asset: list(items) for asset, items in frames.items()}
        self._sensors = dict(sensors)
        self._error_rate = error_rate
        self._seed = seed
        self._confidence = confidence

    def __call__(self, record: RecordedRequest) -> dict[str, Any]:
        match = _ASSET_ID.search(record.text)
        asset = match.group("asset") if match else None
        if asset is None or asset not in self._sensors:
            # no label to answer from: zero confidence never overrides the device
            return {"condition": "ok", "confidence": 0.0, "label": None,
                    "explanation": f"no labels for asset {asset or '(not named in the request)'}"}
        frame = self._frame(asset, record)
        seen = [self._sensors[asset]] + ([frame.condition] if frame is not None else [])
        condition = Condition.worst(seen)
        what = f"frame {frame.name}" if frame is not None else "no frame attached"
        if self._wrong(asset, frame):
            condition = Condition.OK if condition is not Condition.OK else Condition.FAULT
            what += ", answered wrongly on purpose"
        return {"condition": condition.value, "confidence": self._confidence,
                "label": None if condition is Condition.OK else f"labelled {condition.value}",
                "explanation": f"labelled truth of {asset} ({what})"}

    def _frame(self, asset: str, record: RecordedRequest) -> LabelledFrame | None:
        candidates = self._frames.get(asset) or []
        if not candidates or not record.images:
            return None
        try:
            data = base64.b64decode(record.images[0][0].split(",", 1)[1])
            with Image.open(io.BytesIO(data)) as image:
                seen = thumbnail(image)
        except (ValueError, OSError, IndexError):
            log.warning("oracle: the image sent about %s cannot be decoded; answering from its sensors", asset)
            return None
        return min(candidates, key=lambda frame: float(np.abs(frame.thumbnail - seen).mean()))

    def _wrong(self, asset: str, frame: LabelledFrame | None) -> bool:
        """Seeded per (asset, frame): the same frame is always answered the same way, as a model would."""
        draw = random.Random(f"{self._seed}:{asset}:{frame.name if frame else '-'}").random()
        return draw < self._error_rate

