"""The state folder: every file and folder edgewatch keeps under ``state_dir``, named once here.

The service, the CLI (history, alerts, doctor), evaluation, the demo and the fleet agent all find
the same files through ``StateFolder``, so a rename cannot leave one of them reading a stale path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.store.config import HistorySettings
from edge.store.history import History, Retention


@dataclass(frozen=True)
class StateFolder:
    """``state_dir`` and the paths inside it."""

    root: Path

    @property
    def history(self) -> Path:
        return self.root / "history.sqlite3"

    @property
    def frames(self) -> Path:
        """Saved frames (JPEG) of non-ok verdicts, with their anomaly maps."""
        return self.root / "frames"

    @property
    def trends(self) -> Path:
        return self.root / "trends.sqlite3"

    @property
    def alerts(self) -> Path:
        """Alert lifecycle, audit trail and the notification queue."""
        return self.root / "alerts.sqlite3"

    @property
    def learned(self) -> Path:
        """What each asset learned from corrections and cloud answers."""
        return self.root / "learned"

    @property
    def outbox(self) -> Path:
        """Escalations waiting for the cloud."""
        return self.root / "outbox.sqlite"

    @property
    def service_state(self) -> Path:
        """Fusion persistence and sensor baselines carried over a restart."""
        return self.root / "service-state.json"

    @property
    def fleet(self) -> Path:
        """Releases, the current one, and kept normal frames (model rollouts)."""
        return self.root / "fleet"

    @property
    def system_rollbacks(self) -> Path:
        """A/B slots the bootloader went back from, noted by the update's health gate (written as root)."""
        return self.root / "system-rollbacks.json"

    @property
    def engine_cache(self) -> Path:
        """TensorRT engines built on this board."""
        return self.root / "tensorrt"


def open_history(state: StateFolder, settings: HistorySettings) -> History:
    """The verdict history with the config's retention."""
    retention = Retention(
        max_age_s=settings.max_age_days * 86400.0,
        max_db_bytes=int(settings.max_db_mb * 1024 * 1024),
        max_frames_bytes=int(settings.max_frames_mb * 1024 * 1024),
        frame_max_px=settings.frame_max_px,
        jpeg_quality=settings.jpeg_quality,
    )
    return History(state.history, state.frames, retention)
