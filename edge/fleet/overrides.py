"""Config overrides a release may carry: the tuning a fleet changes without touching a board's file.

A release's ``overrides.yaml`` is laid over the board's own config before it is validated (by the
composed config's loader), so the file on the board stays as it was flashed and a rollback is the
link ``current`` pointing back. Assets are named by id, not by list position::

    log_level: debug
    assets:
      press-1:
        check_interval_s: 30
        fusion: {fault_threshold: 0.7, persistence: {raise_after: 2}}
    escalation:
      budget: {max_usd_per_day: 1.0}

Only ALLOWED keys (and what lies below them) may be set: thresholds, intervals, fusion weights and
rules, escalation policy and budget, retention. Everything else is refused because a rollout must
not be able to: read or send secrets (broker and cloud credentials, notification URLs, camera URLs
that carry passwords), write outside the state folder (``state_dir``, profile and bundle paths),
change whom the board trusts (``model.trusted_keys``), or cut itself off from the fleet (``fleet``,
``outputs``). The YAML is parsed without ``${ENV}`` substitution: a release never reads the
board's environment, and refuses aliases (a small file must not expand into a large config).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from edge.config.loader import parse_yaml
from edge.errors import ConfigError
from edge.files import read_bounded

OVERRIDES_NAME = "overrides.yaml"
MAX_OVERRIDES_BYTES = 64 * 1024
ASSET = "*"  # stands for an asset id in ALLOWED
ALLOWED = (
    "log_level",
    "assets.*.check_interval_s", "assets.*.trigger_cooldown_s", "assets.*.triggers", "assets.*.fusion",
    "escalation.policy", "escalation.budget", "escalation.breaker",
    "history.max_age_days", "history.max_db_mb", "history.max_frames_mb", "history.prune_interval_s",
    "service.stall_after_s", "service.status_interval_s",
    "alerts.max_notifications_per_hour", "alerts.maintenance_schedule",
)


def parse_overrides(data: bytes, source: str) -> dict[str, Any]:
    """The overrides in ``data`` once every key is allowed; a ConfigError names the first that is not."""
    try:
        text = data.decode("utf-8")
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise ConfigError(f"{source}: anchors and aliases (*name) are not allowed in config overrides; "
                              "write each value out")
        document = parse_yaml(text)
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{source}: not readable as YAML: {exc}") from exc
    if not isinstance(document, dict) or not document:
        raise ConfigError(f"{source}: config overrides must be a mapping of keys, e.g. 'log_level: debug'")
    _check(document, (), (), source)
    return document


def read_overrides(path: Path) -> bytes:
    """The bytes of an overrides file, checked (``parse_overrides``), ready to be packed into a release."""
    data = read_bounded(path, MAX_OVERRIDES_BYTES, "config overrides", ConfigError, "is it an overrides.yaml?")
    parse_overrides(data, str(path))
    return data


def apply_overrides(config: dict[str, Any], release: Path) -> dict[str, Any]:
    """The raw ``config`` with the overrides of ``release`` (a folder) laid over it; unchanged without any."""
    path = release / OVERRIDES_NAME
    if not path.is_file():
        return config
    overrides = parse_overrides(read_overrides(path), str(path))
    merged = copy.deepcopy(config)
    for key, value in overrides.items():
        if key == "assets":
            _merge_assets(merged, value, path)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _check(document: dict[Any, Any], at: tuple[str, ...], shown: tuple[str, ...], source: str) -> None:
    """Every key of ``document`` (found at ``at`` in ALLOWED's terms, ``shown`` as written) is allowed."""
    for key, value in document.items():
        path = (*at, ASSET if at == ("assets",) else str(key))
        dotted = ".".join(path)
        if any(dotted == allowed or dotted.startswith(allowed + ".") for allowed in ALLOWED):
            continue
        if isinstance(value, dict) and any(allowed.startswith(dotted + ".") for allowed in ALLOWED):
            _check(value, path, (*shown, str(key)), source)
            continue
        raise ConfigError(f"{source}: '{'.'.join((*shown, str(key)))}' may not be set by a release (secrets, "
                          "paths, trust and the fleet settings stay in the board's own config); allowed: "
                          f"{', '.join(ALLOWED)}")


def _merge(base: Any, value: Any) -> Any:
    """Mappings merge key by key; anything else (numbers, lists) replaces what the board had."""
    if isinstance(base, dict) and isinstance(value, dict):
        return {**base, **{key: _merge(base.get(key), item) for key, item in value.items()}}
    return copy.deepcopy(value)


def _merge_assets(config: dict[str, Any], overrides: dict[str, Any], source: Path) -> None:
    assets = config.get("assets")
    by_id = {asset.get("id"): asset for asset in assets if isinstance(asset, dict)} if isinstance(assets, list) else {}
    for asset_id, value in overrides.items():
        if asset_id not in by_id:
            raise ConfigError(f"{source}: assets.{asset_id}: this board has no asset '{asset_id}' "
                              f"(its assets: {', '.join(sorted(map(str, by_id))) or 'none'})")
        by_id[asset_id].update(_merge(by_id[asset_id], value))
