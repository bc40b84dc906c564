"""Where releases live on a board, and the one atomic step that changes which one runs.

::

    <state_dir>/fleet/
      releases/<version>/bundle/     the unpacked, verified bundle
      releases/<version>/profiles/   each asset's profile for that bundle (when the config has one)
      releases/<version>/overrides.yaml  config overrides of that release, if any (edge.fleet.overrides)
      current -> releases/<version>  what the config points at (model.bundle: .../fleet/current/bundle)
      agent.json                     running and previous version, rollbacks so far, highest serial

``current`` is a relative symlink replaced by ``rename``: a reader (a reload, a restart after a
power cut) sees the old release or the new one, bundle and profiles together, never a mix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge.errors import StorageError
from edge.files import write_atomically
from edge.fleet.config import CURRENT, current_release
from edge.store.layout import StateFolder

log = logging.getLogger(__name__)

STATE_NAME = "agent.json"
MAX_SETTLED = 20


@dataclass
class AgentState:
    """What survives a restart: the version running, the one to go back to, how often that happened, the
    sha256 of releases refused or rolled back here (not tried again until another is published), and
    the highest serial of a desired state accepted here (an older one is a replay)."""

    running: str | None = None
    previous: str | None = None
    rollbacks: int = 0
    settled: list[str] = field(default_factory=list)
    serial: int = 0

    def settle(self, sha256: str) -> None:
        self.settled = [*self.settled[-(MAX_SETTLED - 1):], sha256]


class Layout:
    def __init__(self, state_dir: Path) -> None:
        self.root = StateFolder(state_dir).fleet
        self.releases = self.root / "releases"
        self.current = current_release(state_dir)
        self.state_path = self.root / STATE_NAME

    def release(self, version: str) -> Path:
        return self.releases / version

    def running_version(self) -> str | None:
        """The release ``current`` points at (None before the first one)."""
        try:
            return Path(os.readlink(self.current)).name
        except OSError:
            return None

    def switch(self, version: str) -> None:
        """Point ``current`` at ``releases/<version>`` in one rename."""
        if not self.release(version).is_dir():
            raise StorageError(f"release {version} is not unpacked under {self.releases}")
        link = self.root / f".{CURRENT}.{os.getpid()}.partial"
        try:
            if link.is_symlink():
                link.unlink()
            os.symlink(Path("releases") / version, link)
            os.replace(link, self.current)
        except OSError as exc:
            raise StorageError(f"cannot switch {self.current} to release {version}: {exc}") from exc
        log.info("fleet: %s now points at release %s", self.current, version)

    def install(self, bundle: Path, version: str) -> None:
        """Copy a bundle folder in as release ``version`` and switch to it: a board's first release."""
        target = self.release(version) / "bundle"
        if target.exists():
            raise StorageError(f"release {version} already exists under {self.releases}")
        try:
            shutil.copytree(bundle, target, symlinks=False)
        except OSError as exc:
            raise StorageError(f"cannot copy {bundle} to {target}: {exc}") from exc
        self.switch(version)
        self.save(AgentState(running=version))

    def load(self) -> AgentState:
        try:
            document = json.loads(self.state_path.read_text(encoding="utf-8"))
            return AgentState(**document)
        except FileNotFoundError:
            return AgentState(running=self.running_version())
        except (OSError, ValueError, TypeError) as exc:
            log.warning("fleet: %s unreadable (%s); taking the running version from %s", self.state_path, exc,
                        self.current)
            return AgentState(running=self.running_version())

    def save(self, state: AgentState) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            write_atomically(self.state_path, json.dumps(asdict(state)).encode("utf-8"))
        except OSError as exc:
            raise StorageError(f"cannot save {self.state_path}: {exc}") from exc


def rollback_count(state_dir: Path) -> int:
    """Rollbacks this board has made (``edgewatch_rollbacks_total``)."""
    return Layout(state_dir).load().rollbacks
