"""Write a model bundle atomically: files go to a staging folder, the manifest last, then one rename.

A failed export therefore never leaves a half-written bundle where the board would find it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge.bundle.load import sha256_file, write_manifest
from edge.bundle.manifest import FORMAT_VERSION, MANIFEST_NAME, FileEntry, Manifest
from edge.errors import ExportError


class StagedBundle:
    """A bundle being written; ``commit`` hashes every file and writes the manifest."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.manifest: Manifest | None = None

    def path(self, name: str) -> Path:
        path = self.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, fields: dict[str, Any]) -> Manifest:
        """Validate the manifest (files, format version and time are filled in here) and write it."""
        entries = [
            FileEntry(
                path=path.relative_to(self.staging).as_posix(), sha256=sha256_file(path), bytes=path.stat().st_size
            )
            for path in sorted(self.staging.rglob("*"))
            if path.is_file() and path.name != MANIFEST_NAME
        ]
        document = {
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **fields,
            "files": [entry.model_dump() for entry in entries],
        }
        manifest = Manifest.model_validate(document)
        missing = [name for name in manifest.referenced_files() if not (self.staging / name).is_file()]
        if missing:
            raise ExportError(f"the manifest names files that were not written: {', '.join(missing)}")
        write_manifest(self.staging / MANIFEST_NAME, manifest)
        self.manifest = manifest
        return manifest


@contextmanager
def staged_bundle(out: Path, force: bool = False) -> Iterator[StagedBundle]:
    """Yield a staging folder beside ``out``; on a clean exit after ``commit`` it replaces ``out``."""
    out = out.resolve()
    if out.exists() and not force:
        raise ExportError(f"output folder {out} already exists (use --force to replace it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    staged = StagedBundle(staging)
    try:
        yield staged
        if staged.manifest is None:
            raise ExportError("internal error: the bundle was never committed")
        _replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging: Path, out: Path) -> None:
    """Swap the finished bundle into place; the old one is removed only after the swap."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)
