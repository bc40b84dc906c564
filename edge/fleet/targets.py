"""An inventory of boards -> Prometheus ``file_sd`` targets, so that adding a board to the fleet is one
line in a file the team already keeps, and the alert rules (``contrib/prometheus``) see every board
under the same ``board`` and ``group`` labels.

Prometheus re-reads a ``file_sd`` file when it changes, so the file is replaced atomically: a scrape
never sees half a list.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from edge.config.loader import load_model
from edge.config.section import Section, require_unique
from edge.errors import StorageError
from edge.files import write_atomically

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
OWN_LABELS = ("board", "group")  # set from each board's name and group, never from free labels


class Defaults(Section):
    port: int = Field(8080, ge=1, le=65535, description="HTTP port of the boards' API (outputs.http.port).")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels every board's series get.")


class Board(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="The board's name: its `board` label.")
    host: str = Field(description="Host name or IP address the monitoring host reaches the board at.")
    port: int | None = Field(None, ge=1, le=65535, description="HTTP port, when not the default.")
    group: str = Field("default", pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                       description="Rollout and alerting group: its `group` label.")
    labels: dict[str, str] = Field(default_factory=dict, description="More labels; override the defaults'.")

    @field_validator("host")
    @classmethod
    def _plain_host(cls, host: str) -> str:
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        if not _HOST.match(host):
            raise ValueError(f"'{host}' is not a host name or IP address (no scheme, port or path: "
                             "put the port in 'port')")
        return host


class Inventory(Section):
    defaults: Defaults = Field(default_factory=Defaults, description="What every board has unless it says.")
    boards: list[Board] = Field(min_length=1, description="The boards Prometheus scrapes.")

    @model_validator(mode="after")
    def _check(self) -> Inventory:
        require_unique((board.name for board in self.boards), "board names")
        for labels in (self.defaults.labels, *(board.labels for board in self.boards)):
            for name in labels:
                if not _LABEL_NAME.match(name) or name.startswith("__"):
                    raise ValueError(f"'{name}' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, "
                                     "not starting with '__')")
                if name in OWN_LABELS:
                    raise ValueError(f"label '{name}' is set from each board's {name}: remove it from 'labels'")
        return self


def load_inventory(path: Path) -> Inventory:
    return load_model(path, Inventory)


def file_sd_targets(inventory: Inventory) -> list[dict[str, object]]:
    """One target group per board (``host:port`` and its labels), in inventory order."""
    groups: list[dict[str, object]] = []
    for board in inventory.boards:
        port = board.port or inventory.defaults.port
        host = f"[{board.host}]" if ":" in board.host else board.host  # an IPv6 address
        labels = {**inventory.defaults.labels, **board.labels, "board": board.name, "group": board.group}
        groups.append({"targets": [f"{host}:{port}"], "labels": labels})
    return groups


def write_targets(inventory: Inventory, out: Path) -> None:
    text = json.dumps(file_sd_targets(inventory), indent=2) + "\n"
    try:
        write_atomically(out, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise StorageError(f"cannot write the targets file {out}: {exc}") from exc
