"""The durable outbox: order, bounds, idempotency, and a process killed with SIGKILL mid-flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge.escalation.client import CloudClient
from edge.escalation.config import OutboxConfig
from edge.escalation.escalator import Escalator
from edge.escalation.local_server import Fault, LocalCloudServer
from edge.escalation.outbox import Outbox
from tests.cloud_helpers import config_for, unsure
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def _add(outbox: Outbox, key: str, now: float = 0.0) -> bool:
    return outbox.add(key, "pump", "pump:warning", None, "{}", {"verdict": "warning"}, now=now)


def test_pending_oldest_first_and_keys_are_idempotent(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        assert all(_add(outbox, key) for key in ("c", "a", "b"))
        assert not _add(outbox, "a")
        assert [item.key for item in outbox.pending()] == ["c", "a", "b"]
        outbox.complete("a", {"status": "answered"})
        outbox.fail("b", "malformed twice")
        assert [item.key for item in outbox.pending()] == ["c"]
        assert outbox.get("a").result == {"status": "answered"} and outbox.get("b").error == "malformed twice"


def test_outbox_is_bounded(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite", OutboxConfig(max_pending=3, keep_done=2)) as outbox:
        for index in range(5):
            _add(outbox, f"k{index}")
        assert [item.key for item in outbox.pending()] == ["k2", "k3", "k4"]
        assert outbox.counts() == {"pending": 3, "dropped": 2}
        for key in ("k2", "k3", "k4"):
            outbox.complete(key, {})
        _add(outbox, "k5")
        assert outbox.counts() == {"pending": 1, "done": 2}


def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    from edge.errors import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot be opened"):
        Outbox(blocker / "outbox.sqlite")


_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from edge.escalation.client import CloudClient
    from edge.escalation.escalator import Escalator
    from tests.cloud_helpers import config_for, unsure

    config = config_for(sys.argv[2], breaker={"failure_threshold": 100})
    with Escalator(config, Path(sys.argv[1]), client=CloudClient(config, api_key="test")) as escalator:
        for index in range(5):
            escalator.consider(unsure(fault_type=f"type{index}"), on_demand=True)
        print("queued", flush=True)
        sys.stdin.readline()  # the parent brings the cloud back, slowly
        escalator.drain()
        print("drained", flush=True)
    """
)


def test_outbox_survives_sigkill_mid_flight_and_drains_in_order(tmp_path: Path) -> None:
    with LocalCloudServer() as cloud:
        cloud.fail_always(Fault.unavailable(0.01))  # offline: everything is queued
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), cloud.url, str(REPO_ROOT)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "queued"
            cloud.fail_always(Fault.slow(0.5))  # back, but slow: the child will be mid-request
            child.stdin.write("go\n")
            child.stdin.flush()
            wait_until(lambda: len([r for r in cloud.completions() if r.status == 200]) >= 2)
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        # the in-flight request completes server-side after the client died
        assert wait_until(lambda: len(cloud.answered_keys) >= 2)
        assert len(cloud.answered_keys) == 2
        cloud.fail_always(None)

        config = config_for(cloud.url)
        with Escalator(config, tmp_path, client=CloudClient(config, api_key="test")) as escalator:
            before = escalator.outbox.items()
            assert len(before) == 5  # nothing lost
            assert [item.status for item in before] == ["done"] + ["pending"] * 4
            # tried once while offline; the second try was in flight at the kill
            assert [item.attempts for item in before] == [2, 2, 1, 1, 1]
            escalator.drain()
            after = escalator.outbox.items()
            # no duplicate escalation after restart: the same situation is within its cool-down
            repeat = escalator.consider(unsure(fault_type="type0"))
        keys = [item.key for item in after]
        assert [item.status for item in after] == ["done"] * 5
        assert [item.seq for item in after] == sorted(item.seq for item in after)
        # every escalation was answered exactly once, oldest first, resent ones by their stored key
        assert cloud.answered_keys == keys
        first_arrival = list(dict.fromkeys(r.idempotency_key for r in cloud.completions() if r.status == 200))
        assert first_arrival == keys
        assert any(r.replayed for r in cloud.completions())  # the one in flight at the kill was replayed
        assert repeat.escalation["status"] == "skipped" and not repeat.escalated
        assert len(cloud.answered_keys) == 5


def test_service_worker_sends_what_was_queued_before_a_restart(tmp_path: Path) -> None:
    import threading

    from tests.cloud_helpers import sure_ok

    with LocalCloudServer() as cloud:
        config = config_for(cloud.url)
        cloud.fail_always(Fault.unavailable(0.01))
        with Escalator(config, tmp_path, client=CloudClient(config, api_key="t")) as offline:
            assert offline.submit(7, unsure().verdict, []).escalation["status"] == "queued"
            wait_until(lambda: cloud.completions(), timeout_s=5)
        cloud.fail_always(None)

        answered = threading.Event()
        results = []

        def on_result(item, result) -> None:
            results.append((item.verdict_id, result["status"]))
            answered.set()

        with Escalator(config, tmp_path, client=CloudClient(config, api_key="t"), on_result=on_result) as restarted:
            assert not restarted.submit(8, sure_ok().verdict, []).escalated  # nothing new to ask
            assert answered.wait(5)
    assert results == [(7, "answered")]
