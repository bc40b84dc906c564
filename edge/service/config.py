"""Config sections of the long-running service: history retention, loop limits, sensor triggers."""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.config.section import Section


class HistorySettings(Section):
    """How much verdict history and how many saved frames to keep under ``state_dir``."""

    max_age_days: float = Field(90.0, gt=0, description="Verdicts older than this are deleted.")
    max_db_mb: float = Field(256.0, gt=0, description="The history database is trimmed, oldest first, to this size.")
    max_frames_mb: float = Field(
        512.0, ge=0, description="JPEGs of non-ok verdicts are deleted, oldest first, beyond this total."
    )
    frame_max_px: int = Field(1024, gt=0, description="Long side of a saved frame.")
    jpeg_quality: int = Field(85, ge=10, le=95, description="JPEG quality of saved frames.")
    prune_interval_s: float = Field(3600.0, gt=0, description="How often retention runs.")


class ServiceSettings(Section):
    """Limits that keep the loop responsive and its memory flat."""

    workers: int = Field(
        0, ge=0, description="Checks run at the same time; 0 = one per asset (a hung camera blocks only its asset)."
    )
    stall_after_s: float = Field(
        300.0, gt=0, description="A check running longer than this stops the systemd watchdog pings (restart)."
    )
    shutdown_grace_s: float = Field(
        20.0, ge=0, description="On SIGTERM, how long running checks may take to finish before exit."
    )
    status_interval_s: float = Field(30.0, gt=0, description="How often the systemd STATUS= line is refreshed.")


class TriggerRule(Section):
    """'Check this asset now' when a sensor reading spikes or jumps (a frame is grabbed at once)."""

    sensor: str = Field(min_length=1, description="Name of a sensor of this asset.")
    above: float | None = Field(
        None, description="Trigger when the reading (RMS for a vibration burst) is above this."
    )
    jump: float | None = Field(
        None, gt=0, description="Trigger when the reading changed by more than this since the previous one."
    )

    @model_validator(mode="after")
    def _has_a_test(self) -> TriggerRule:
        if self.above is None and self.jump is None:
            raise ValueError("a trigger needs 'above' or 'jump'")
        return self
