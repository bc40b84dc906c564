"""Every camera and sensor plug-in a config can name is registered, and every registered one loads.

One registry shape (``edge.plugins``) serves both; a type added to the config without a plug-in,
or a registry entry whose module or class was renamed, fails here rather than on a board.
"""

from __future__ import annotations

import inspect
import typing

import pytest

from edge import plugins
from edge.sensors import plugins as sensor_plugins
from edge.sensors.config import SensorConfig
from edge.sources import plugins as camera_plugins
from edge.sources.base import Camera
from edge.sources.config import CameraConfig


def config_types(union: object) -> set[str]:
    """The ``type`` literals of a discriminated config union."""
    members = typing.get_args(typing.get_args(union)[0])
    return {typing.get_args(member.model_fields["type"].annotation)[0] for member in members}


def test_every_config_type_has_a_plug_in_and_no_more() -> None:
    assert set(camera_plugins.PLUGINS) == config_types(CameraConfig)
    assert set(sensor_plugins.PLUGINS) == config_types(SensorConfig)


@pytest.mark.parametrize("kind", sorted(camera_plugins.PLUGINS))
def test_every_camera_plug_in_loads_as_a_camera(kind: str) -> None:
    plugin = plugins.load(camera_plugins.PLUGINS, kind)
    assert inspect.isclass(plugin) and issubclass(plugin, Camera), plugin


@pytest.mark.parametrize("kind", sorted(sensor_plugins.PLUGINS))
def test_every_sensor_plug_in_loads_as_a_reader(kind: str) -> None:
    plugin = plugins.load(sensor_plugins.PLUGINS, kind)
    assert inspect.isclass(plugin) and callable(getattr(plugin, "read", None)) and callable(plugin.close), plugin


def test_an_unknown_type_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        plugins.load(camera_plugins.PLUGINS, "betamax")
