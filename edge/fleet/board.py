"""What the fleet agent reads of a board's config: a structural type, so the service hands in its
config as it is while the fleet package stays independent of the whole config file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from edge.broker import BrokerSettings
from edge.fleet.config import FleetSettings
from edge.store.layout import StateFolder
from edge.vision.config import ModelSettings


class BoardOutputs(Protocol):
    @property
    def mqtt(self) -> BrokerSettings | None: ...


class BoardAsset(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def cameras(self) -> Sequence[object]: ...

    @property
    def profile(self) -> Path | None: ...


class BoardConfig(Protocol):
    @property
    def fleet(self) -> FleetSettings: ...

    @property
    def model(self) -> ModelSettings | None: ...

    @property
    def outputs(self) -> BoardOutputs: ...

    @property
    def state_dir(self) -> Path: ...

    @property
    def state(self) -> StateFolder: ...

    @property
    def assets(self) -> Sequence[BoardAsset]: ...
