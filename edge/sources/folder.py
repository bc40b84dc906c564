"""Replay image files from a folder (or glob) in name order: demos, tests, offline evaluation."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from edge.errors import SourceError
from edge.files import read_bounded
from edge.frames.decode import MAX_IMAGE_BYTES
from edge.sources.base import Camera, decode_image
from edge.sources.config import FolderCamera

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class FolderSource(Camera):
    config: FolderCamera
    _files: tuple[Path, ...] = ()
    _next = 0

    def _open(self) -> None:
        pattern = str(self.config.path)
        if self.config.path.is_dir():
            files = [p for p in self.config.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            files = [Path(p) for p in glob.glob(pattern) if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise SourceError(f"camera {self.name}: no images in {pattern} ({', '.join(IMAGE_SUFFIXES)})")
        self._files = tuple(sorted(files))
        self._next = 0

    def _grab(self) -> np.ndarray:
        if self._next >= len(self._files):
            if not self.config.loop:
                raise SourceError(f"camera {self.name}: replayed all {len(self._files)} images of {self.config.path}")
            self._next = 0
        path = self._files[self._next]
        self._next += 1
        # regular files only (a FIFO would hang the check, /dev/zero fill memory), capped as HTTP snapshots
        data = read_bounded(path, MAX_IMAGE_BYTES, f"camera {self.name}: image", SourceError, "is it one frame?")
        return decode_image(data, self.resize_max_px, f"camera {self.name}: {path}")

    def _close(self) -> None:
        self._files = ()
