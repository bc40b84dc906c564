"""What several commands share: the ``--config`` option, its installed default, and choosing an asset
and its cameras.

Argparse and the error tree only, so that declaring every command stays cheap (``edgewatch --help``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge.errors import InputError, UsageError

if TYPE_CHECKING:
    from edge.settings import AssetConfig, Config
    from edge.sources.config import CameraBase

DEFAULT_CONFIG = Path("/etc/edgewatch/config.yaml")  # where install-service and the board image put it


def add_config(parser: argparse.ArgumentParser, help_text: str = "Config file.", *, required: bool = False,
               installed: bool = False) -> None:
    """``--config FILE``; ``installed``: it defaults to the installed config (``DEFAULT_CONFIG``)."""
    parser.add_argument("--config", type=Path, required=required, default=DEFAULT_CONFIG if installed else None,
                        help=help_text)


def handles(parser: argparse.ArgumentParser, target: str) -> None:
    """``target`` ("module:function", taking the parsed arguments, returning the exit code) runs this
    command; it is imported only then, so declaring a command never loads its work."""
    parser.set_defaults(handler=target)


def choose_asset(config: Config | None, asset_id: str | None) -> AssetConfig | None:
    """The asset ``--asset`` names in ``config``, or its only one; None without a config."""
    if config is None:
        if asset_id is not None:
            raise UsageError("--asset needs --config (the file that defines the asset)")
        return None
    ids = ", ".join(asset.id for asset in config.assets)
    if asset_id is None:
        if len(config.assets) == 1:
            return config.assets[0]
        raise UsageError(f"the config has several assets: choose one with --asset ({ids})")
    for asset in config.assets:
        if asset.id == asset_id:
            return asset
    raise UsageError(f"no asset '{asset_id}' in {config.site} config (assets: {ids})")


def cameras_of(asset: AssetConfig, name: str | None = None) -> Sequence[CameraBase]:
    """The asset's cameras, or the one called ``name``."""
    if not asset.cameras:
        raise InputError(f"asset {asset.id} has no camera to capture from")
    if name is None:
        return asset.cameras
    chosen = [camera for camera in asset.cameras if camera.name == name]
    if not chosen:
        known = ", ".join(camera.name for camera in asset.cameras)
        raise InputError(f"asset {asset.id} has no camera '{name}' (it has: {known})")
    return chosen
