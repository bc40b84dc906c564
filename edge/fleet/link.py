"""Topics of the fleet. The board agent and ``edgewatch fleet rollout`` each open their own connection
(``edge.broker``), so a rollout never waits behind the verdict queue and the verdict sink
stays unaware of fleets.
"""

from __future__ import annotations


def group_desired(prefix: str, group: str) -> str:
    return f"{prefix}/_fleet/{group}/desired"


def board_desired(prefix: str, board: str) -> str:
    """The per-board override (a canary): while it holds a message it wins over the group's."""
    return f"{prefix}/_fleet/boards/{board}/desired"


def reported(prefix: str, board: str) -> str:
    return f"{prefix}/_boards/{board}/reported"
