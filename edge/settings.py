"""The edgewatch config file: every stage's section composed into ``Config`` and ``AssetConfig``.

The sections know nothing of each other or of this file; only the service, the CLI, evaluation and
the demo read the whole config, and they hand each stage its own section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from edge.alerts.config import AlertsSettings
from edge.config.loader import load_mapping, load_model, validate_model
from edge.config.section import ConfigPath, Section, require_unique
from edge.escalation.config import EscalationConfig
from edge.fleet.config import FleetSettings, current_release
from edge.fleet.overrides import OVERRIDES_NAME, apply_overrides
from edge.fusion.config import FusionConfig
from edge.outputs.config import OutputsSettings
from edge.sensors.config import SensorConfig, TriggerRule
from edge.sources.config import CameraConfig
from edge.store.config import HistorySettings
from edge.store.layout import StateFolder
from edge.vision.config import ModelSettings


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


class AssetConfig(Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Stable id used in topics, URLs and history.")
    name: str = Field("", description="Human name shown on the status page.")
    check_interval_s: float = Field(60.0, gt=0, description="Seconds between scheduled checks.")
    profile: ConfigPath | None = Field(None, description="Enrolled profile (`edgewatch enroll`) for this asset.")
    cameras: list[CameraConfig] = Field(default_factory=list, description="Cameras looking at the asset.")
    sensors: list[SensorConfig] = Field(default_factory=list, description="Sensors on the asset.")
    allow_images_to_cloud: bool = Field(
        False, description="Frames may leave the device on escalation; off = text-only escalation."
    )
    triggers: list[TriggerRule] = Field(
        default_factory=list, description="Sensor spikes or jumps that start a check at once."
    )
    trigger_cooldown_s: float = Field(30.0, ge=0, description="At most one sensor-triggered check per this long.")
    fusion: FusionConfig = Field(
        default_factory=FusionConfig, description="How vision and sensor evidence combine into the verdict."
    )

    @model_validator(mode="after")
    def _unique_names(self) -> AssetConfig:
        require_unique((camera.name for camera in self.cameras), "camera names")
        require_unique((sensor.name for sensor in self.sensors), "sensor names")
        if not self.cameras and not self.sensors:
            raise ValueError("an asset needs at least one camera or one sensor")
        unknown = sorted({t.sensor for t in self.triggers} - {s.name for s in self.sensors})
        if unknown:
            raise ValueError(f"triggers name sensors this asset does not have: {', '.join(unknown)}")
        names = {s.name for s in self.sensors}
        for sensor in self.sensors:
            ambient = sensor.analytics.ambient_sensor
            if ambient is not None and (ambient not in names or ambient == sensor.name):
                raise ValueError(
                    f"sensor {sensor.name}: ambient_sensor '{ambient}' is not another sensor of this asset"
                )
            tacho = sensor.vibration.speed_sensor if sensor.vibration is not None else None
            if tacho is not None and (tacho not in names or tacho == sensor.name):
                raise ValueError(f"sensor {sensor.name}: speed_sensor '{tacho}' is not another sensor of this asset")
        return self


class Config(Section):
    site: str = Field("edgewatch", description="Name of this board/site, used in MQTT client ids and the status page.")
    state_dir: ConfigPath = Field(
        Path("/var/lib/edgewatch"), description="History, outbox, frames and profiles live here."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")
    model: ModelSettings | None = Field(None, description="The vision model; omit for sensor-only monitoring.")
    assets: list[AssetConfig] = Field(min_length=1, description="The machines to watch.")
    outputs: OutputsSettings = Field(
        default_factory=OutputsSettings, description="MQTT (+ Home Assistant discovery), HTTP API and status page."
    )
    history: HistorySettings = Field(default_factory=HistorySettings, description="Verdict history retention.")
    service: ServiceSettings = Field(default_factory=ServiceSettings, description="Limits of the check loop.")
    escalation: EscalationConfig = Field(
        default_factory=EscalationConfig, description="Asking a cloud model when unsure (off by default)."
    )
    alerts: AlertsSettings = Field(
        default_factory=AlertsSettings, description="Alert lifecycle, notifications and planned maintenance."
    )
    fleet: FleetSettings = Field(
        default_factory=FleetSettings, description="Model rollouts to a fleet of boards (off by default)."
    )

    @property
    def state(self) -> StateFolder:
        """The files under ``state_dir``."""
        return StateFolder(self.state_dir)

    @model_validator(mode="after")
    def _unique_assets(self) -> Config:
        require_unique((asset.id for asset in self.assets), "asset ids")
        windows = {a for w in self.alerts.maintenance_schedule for a in w.assets} - {a.id for a in self.assets}
        if windows:
            raise ValueError(f"alerts.maintenance_schedule names unknown assets: {', '.join(sorted(windows))}")
        if self.model is None and any(asset.cameras for asset in self.assets):
            raise ValueError("cameras are configured but no model: add a 'model: {bundle: ...}' section")
        if self.fleet.enabled and (self.outputs.mqtt is None or self.model is None or not self.model.trusted_keys):
            raise ValueError("fleet.enabled needs outputs.mqtt (the broker it listens on) and model.trusted_keys "
                             "(the keys its releases are signed with)")
        return self


def load_config(path: Path, release: Path | None = None) -> Config:
    """Load and validate an edgewatch YAML config (raises ConfigError naming the key at fault).

    With ``fleet.enabled``, the config overrides of the running release (``<state_dir>/fleet/current``)
    are laid over the file; ``release`` names another release folder to check before switching to it."""
    config = load_model(path, Config)
    if release is None and not config.fleet.enabled:
        return config
    release = release or current_release(config.state_dir)
    if not (release / OVERRIDES_NAME).is_file():
        return config
    return validate_model(apply_overrides(load_mapping(path), release), Config, path,
                          f"{path} with {release / OVERRIDES_NAME}")
