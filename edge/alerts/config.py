"""Config of alerts: notification targets, rate limit, snooze, planned maintenance, actions per fault."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from edge.config.section import Section

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
YEAR_S = 366 * 86400.0  # durations beyond a year are typing errors (1e12 s overflowed the date code)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


class MaintenanceWindow(Section):
    """A weekly planned stop, in the board's time zone (``alerts.timezone``)."""

    assets: list[str] = Field(default_factory=list, description="Asset ids it covers; empty: every asset.")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        min_length=1, description="Weekdays the window starts on, e.g. [sat, sun]."
    )
    start: str = Field(description="Local start time, 'HH:MM' (24 h).")
    duration_min: float = Field(gt=0, le=7 * 24 * 60, description="How long the window lasts, in minutes.")

    @field_validator("start")
    @classmethod
    def _clock_time(cls, text: str) -> str:
        if not _CLOCK.match(text):
            raise ValueError(f"start {text!r} must be a 24-hour time such as '06:30'")
        return text

    @property
    def start_min(self) -> int:
        hours, minutes = self.start.split(":")
        return int(hours) * 60 + int(minutes)


class AlertsSettings(Section):
    notify: list[SecretStr] = Field(
        default_factory=list,
        description="Where alert transitions go: apprise URLs (json://, slack://, msteams://, ntfy://, "
                    "mailto://...?mode=starttls); use ${ENV} for the secrets they hold.",
    )
    max_notifications_per_hour: int = Field(
        30, ge=1, description="Board-wide send rate; beyond it notifications wait in the queue, never dropped."
    )
    keep_notifications: int = Field(
        10_000, ge=100, description="Notification rows kept (sent and dropped ones are deleted first; beyond it "
                                    "the oldest, least urgent waiting ones are dropped with a warning).")
    keep_events: int = Field(100_000, ge=1_000, description="Audit entries kept (alerts log); older ones are deleted.")
    retry_min_s: float = Field(5.0, gt=0, description="First retry delay after a failed send; doubles each time.")
    retry_max_s: float = Field(600.0, gt=0, description="Longest retry delay.")
    snooze_default_s: float = Field(3600.0, gt=0, description="Snooze length when none is given.")
    snooze_max_s: float = Field(7 * 86400.0, gt=0, le=YEAR_S, description="Longest snooze a request may ask for.")
    maintenance_max_s: float = Field(
        30 * 86400.0, gt=0, le=YEAR_S,
        description="Longest maintenance a request may ask for with a duration (HTTP, MQTT, CLI); "
                    "maintenance without one lasts until stopped.",
    )
    timezone: str | None = Field(
        None, description="IANA time zone of maintenance_schedule, e.g. 'Europe/Berlin'; none: the board's."
    )
    maintenance_schedule: list[MaintenanceWindow] = Field(
        default_factory=list, description="Weekly planned stops: no alerts, no escalations, no learning."
    )
    actions: dict[str, str] = Field(
        default_factory=dict,
        description="Recommended action per fault type (e.g. outer_race: 'Plan a bearing replacement'); "
                    "overrides the built-in ones.",
    )

    @field_validator("notify")
    @classmethod
    def _urls(cls, urls: list[SecretStr]) -> list[SecretStr]:
        for index, url in enumerate(urls):
            if not _URL.match(url.get_secret_value()):
                raise ValueError(f"notify[{index}] is not an apprise URL such as 'json://host/path' or "
                                 "'mailto://user:pass@host?mode=starttls' (an unset ${ENV}?)")
        return urls

    @model_validator(mode="after")
    def _consistent(self) -> AlertsSettings:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        if self.snooze_default_s > self.snooze_max_s:
            raise ValueError("snooze_default_s must not exceed snooze_max_s")
        if self.timezone is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {self.timezone!r} is not an IANA zone such as 'Europe/Berlin'") from None
        return self
