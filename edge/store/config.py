"""The ``history:`` section of the config: how much verdict history the state folder keeps."""

from __future__ import annotations

from pydantic import Field

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
