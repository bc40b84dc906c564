"""The demo's stages that run edgewatch's own commands in child processes (export, enroll, run),
and what an earlier run in the same ``--out`` folder left that this run may take as it is.

The export and the enroll are the slow stages (the INT8 export and its gate; a greedy coreset
over every normal patch, several times for the calibration folds). A verified bundle of the same
model is reused; a profile is reused when it was built from the same bundle, the same frames and
the same arguments (a digest stored beside it), so another seed's cells, another bundle or
another edgewatch enrolls again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge import __version__
from edge.bundle.load import load_bundle
from edge.demo.data import DemoData
from edge.errors import BundleError, EdgewatchError, StorageError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
MODEL = "efficientnet-lite0"
DEFECT_LABEL = "defective cell"
STAMP_SUFFIX = ".inputs"  # beside the profile: the digest of what it was built from


def inputs_digest(bundle: Path, folders: Sequence[Path], arguments: Sequence[str]) -> str:
    """SHA-256 over the bundle's manifest (it names every model file's hash), every file in
    ``folders`` (name and bytes, in name order), the enroll ``arguments`` and the edgewatch version."""
    digest = hashlib.sha256(f"edgewatch {__version__}\n".encode())
    try:
        digest.update((bundle / "manifest.json").read_bytes())
        for folder in folders:
            for path in sorted(p for p in folder.iterdir() if p.is_file()):
                digest.update(f"\n{folder.name}/{path.name}\n".encode())
                digest.update(path.read_bytes())
    except OSError as exc:
        raise StorageError(f"cannot read the demo's enroll inputs: {exc}") from exc
    digest.update("\n".join(arguments).encode())
    return digest.hexdigest()


def export(bundle: Path, calibration: Path, progress: Progress) -> None:
    """Export, unless ``bundle`` already holds a verified INT8 export of the same model."""
    try:
        manifest = load_bundle(bundle, verify=True).manifest
    except BundleError as exc:
        if bundle.exists():
            progress(f"      the bundle in {bundle} is not reusable ({exc}); exporting again")
    else:
        if manifest.source.architecture == MODEL and manifest.quantization.mode != "none":
            progress(f"      reusing the verified bundle in {bundle}")
            return
    progress("      gate: the normal-baseline heads rank every calibration cell alike in FP32 and INT8 "
             "(rank correlation >= 0.90 at its interval's lower end)")
    edgewatch(["export", "--model", MODEL, "--out", str(bundle), "--calibration", str(calibration),
                "--force"], progress)


def enroll(bundle: Path, data: DemoData, profile: Path, progress: Progress) -> None:
    """Enroll, unless ``profile`` was built from this very bundle, these frames and these arguments."""
    arguments = ["enroll", "--bundle", str(bundle), "--normal", str(data.enroll_dir),
                 "--label", f"{DEFECT_LABEL}:fault={data.examples_dir}", "--out", str(profile), "--force"]
    digest = inputs_digest(bundle, (data.enroll_dir, data.examples_dir), arguments)
    if is_current(profile, digest):
        progress(f"      reusing {profile}: enrolled from the same bundle and cells")
        return
    forget(profile)
    edgewatch(arguments, progress)
    remember(profile, digest)


def edgewatch(arguments: list[str], progress: Progress, env: dict[str, str] | None = None) -> None:
    """Run one edgewatch command in a child process; its stderr (progress bars, logs) passes through.

    Its stdout goes to ``progress`` line by line, so the demo's own ``--json`` output stays one object.
    """
    command = [sys.executable, "-m", "edge", *arguments]
    log.info("running %s", " ".join(command))
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    for line in completed.stdout.splitlines():
        progress(f"      {line}")
    if completed.returncode != 0:
        raise EdgewatchError(f"'edgewatch {arguments[0]}' failed with exit code {completed.returncode} (see above)")


def _stamp(output: Path) -> Path:
    return output.with_name(output.name + STAMP_SUFFIX)


def is_current(output: Path, digest: str) -> bool:
    """Whether ``output`` exists and was built from inputs with this digest."""
    try:
        return output.is_file() and _stamp(output).read_text(encoding="utf-8").strip() == digest
    except OSError:  # no stamp (an older run, or a failed one): build again
        return False


def remember(output: Path, digest: str) -> None:
    """Record what ``output`` was built from, once it is complete."""
    try:
        _stamp(output).write_text(digest + "\n", encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write {_stamp(output)}: {exc}") from exc


def forget(output: Path) -> None:
    """Drop the record before ``output`` is rebuilt: a failed rebuild must not pass for current."""
    try:
        _stamp(output).unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot remove {_stamp(output)}: {exc}") from exc
