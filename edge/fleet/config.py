"""The ``fleet:`` config section: this board's name and group for model and config rollouts."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edge.config.section import Section
from edge.store.layout import StateFolder

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"  # the inventory's board and group names (edge.fleet.targets)
CURRENT = "current"


def current_release(state_dir: Path) -> Path:
    """The link to the release that runs: its bundle, profiles and config overrides."""
    return StateFolder(state_dir).fleet / CURRENT


class FleetSettings(Section):
    """Off by default: with it on, the board follows the desired state published for its group."""

    enabled: bool = Field(False, description="Follow the desired release of this board's group on the MQTT broker.")
    board: str | None = Field(None, pattern=NAME_PATTERN,
                              description="This board's name, as in the inventory (required when enabled).")
    group: str = Field("default", pattern=NAME_PATTERN, description="The inventory group this board belongs to.")
    health_window_s: float = Field(
        120.0, gt=0, description="After a switch, every asset must store a verdict within this long, or the "
                                 "board goes back to the previous release.")
    download_timeout_s: float = Field(60.0, gt=0, description="Socket timeout of one release download.")
    download_attempts: int = Field(4, ge=1, le=20, description="Tries per download; waits 2, 4, 8 s... between.")
    max_release_mb: float = Field(1024.0, gt=0, description="A desired state naming a larger release is refused.")
    keep_normal_frames: int = Field(
        30, ge=0, le=1000, description="Per asset: the last frames judged ok with confidence, kept under "
                                       "<state_dir>/fleet/normal/<asset>/ to check and enroll a new model; 0: none.")
    keep_min_confidence: float = Field(0.8, ge=0, le=1, description="A frame is kept only when judged ok this sure.")
    keep_interval_s: float = Field(600.0, ge=0, description="At most one kept frame per asset per this long.")
    agreement_frames: int = Field(
        20, ge=0, le=1000, description="Kept frames per asset scored with the old and the new model before a "
                                       "switch; 0: no comparison.")
    min_agreement: float = Field(
        0.0, ge=0, le=1, description="Refuse a release whose model agrees with the running one on fewer of "
                                     "those frames than this share (0: report only).")

    @model_validator(mode="after")
    def _named(self) -> FleetSettings:
        if self.enabled and self.board is None:
            raise ValueError("fleet.enabled needs fleet.board: this board's name in the inventory")
        return self
