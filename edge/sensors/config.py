"""Sensor config: a discriminated union on ``type``; physical limits make bad readings visible."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from edge.settings import Section

Quantity = Literal["temperature", "vibration", "current", "pressure", "humidity", "speed", "generic"]


class SensorBase(Section):
    name: str = Field(description="Sensor name, unique within its asset.", min_length=1)
    quantity: Quantity = Field(description="What is measured; picks the analytics applied.")
    unit: str = Field("", description="Unit of the values, e.g. 'degC', 'g', 'A', 'bar'.")
    interval_s: float = Field(10.0, gt=0, description="How often to read.")
    timeout_s: float = Field(5.0, gt=0, description="A read slower than this counts as failed.")
    stale_after_s: float = Field(60.0, gt=0, description="No good reading for this long: sensor unhealthy.")
    min_valid: float | None = Field(None, description="Physical lower limit; below it the reading is rejected.")
    max_valid: float | None = Field(None, description="Physical upper limit; above it the reading is rejected.")
    warn_above: float | None = Field(None, description="Absolute warning limit.")
    fault_above: float | None = Field(None, description="Absolute fault limit.")

    @model_validator(mode="after")
    def _limits_ordered(self) -> "SensorBase":
        if self.min_valid is not None and self.max_valid is not None and self.min_valid >= self.max_valid:
            raise ValueError("min_valid must be below max_valid")
        if self.warn_above is not None and self.fault_above is not None and self.warn_above > self.fault_above:
            raise ValueError("warn_above must not exceed fault_above")
        return self


class ReplaySensor(SensorBase):
    type: Literal["replay"] = Field(description="Replay a recording (CSV, JSONL or NPY).")
    path: Path = Field(description="Recording file.")
    column: str | None = Field(None, description="CSV/JSONL column holding the value.")
    rate_hz: float | None = Field(None, gt=0, description="Sample rate of a vibration burst recording.")
    loop: bool = Field(True, description="Start again at the end of the recording.")


class CommandSensor(SensorBase):
    type: Literal["command"] = Field(description="Run a command; its stdout is one number (or JSON).")
    command: list[str] = Field(min_length=1, description="Program and arguments, no shell.")


SensorConfig = Annotated[Union[ReplaySensor, CommandSensor], Field(discriminator="type")]
