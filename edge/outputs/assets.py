"""What the outputs know of an asset: its id, name, check interval, and its cameras' and sensors' names.

A structural type, so the service hands in its config's assets as they are while the outputs stay
independent of the whole config file (``edge.settings``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class NamedCamera(Protocol):
    @property
    def name(self) -> str: ...


class DescribedSensor(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def quantity(self) -> str: ...

    @property
    def unit(self) -> str: ...


class DescribedAsset(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def check_interval_s(self) -> float: ...

    @property
    def cameras(self) -> Sequence[NamedCamera]: ...

    @property
    def sensors(self) -> Sequence[DescribedSensor]: ...
