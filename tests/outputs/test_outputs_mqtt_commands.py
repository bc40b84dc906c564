"""MQTT commands against a real Mosquitto broker, as anyone on the broker could send them: off by
default, on per kind, a strict payload schema, retained commands never carried out (also when
delivered live), and a rate limit per asset and command; plus a hypothesis fuzz of payloads."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.samples import asset
from edge.alerts import mqtt_commands
from edge.alerts.config import AlertsSettings
from edge.alerts.fields import MAX_DEPTH, MAX_TEXT, FieldError
from edge.alerts.lifecycle import AlertBook
from edge.outputs.config import MqttSettings
from edge.outputs.homeassistant import ASSET_ENTITIES
from edge.outputs.mqtt import MqttSink
from edge.outputs.ratelimit import RateLimit
from edge.store.alerts import AlertStore
from tests.alerts_support import Clock
from tests.outputs_support import Listener

ASSETS = [asset("press-1", "Hydraulic press 1"), asset("pump-2", "Coolant pump")]
ALL = ["check", "escalate", "acknowledge", "snooze", "maintenance"]


class Board:
    """A sink wired to a real AlertBook, and a client publishing as an outsider would."""

    def __init__(self, broker: tuple[str, int], prefix: str, folder: Path, **mqtt: Any) -> None:
        self.prefix = prefix
        self.clock = Clock()
        self.book = AlertBook(AlertStore(folder / "alerts.sqlite3"), AlertsSettings(),
                              {a.id: a.name for a in ASSETS}, clock=self.clock)
        self.requested: list[tuple[str, str]] = []
        self.settings = MqttSettings.model_validate({
            "host": broker[0], "port": broker[1], "topic_prefix": prefix, "discovery_prefix": f"{prefix}-ha",
            "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, **mqtt})
        self.sink = MqttSink(self.settings, ASSETS, lambda a, c: self.requested.append((a, c)), site="test",
                             on_alert=lambda a, command: mqtt_commands.apply(self.book, a, command))
        self.sink.start()
        assert self.sink.wait_connected(5)
        self.client = Listener(*broker, f"{prefix}-ha/#")
        self.client.collect(0.3)  # the retained discovery configs

    def send(self, asset_id: str, command: str, payload: bytes | str, retain: bool = False) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.client.publish(f"{self.prefix}/{asset_id}/{command}/set", data, retain=retain)

    def settle(self) -> None:
        """Every message sent so far has been handled: the board answers a later one (same client,
        so the broker delivers in order), here Home Assistant's birth message, by republishing discovery."""
        assert self.sink.discovery is not None
        self.client.publish(f"{self.prefix}-ha/status", b"online")
        self.client.wait(self.sink.discovery.topic(ASSETS[-1], ASSET_ENTITIES[0]))

    def actions(self, asset_id: str = "press-1") -> list[str]:
        return [e.action for e in reversed(self.book.store.events(asset_id))]

    def close(self) -> None:
        self.client.close()
        self.sink.close()
        self.book.store.close()


@pytest.fixture()
def board(mqtt_broker: tuple[str, int], request: pytest.FixtureRequest,
          tmp_path: Path) -> Iterator[Callable[..., Board]]:
    made: dict[str, Board] = {}

    def make(name: str = "", **mqtt: Any) -> Board:
        """A new board, or with ``name`` the one made under that name (hypothesis runs many examples
        on one function-scoped fixture)."""
        if name and name in made:
            return made[name]
        number = str(len(made))
        prefix = f"ewc-{request.node.originalname.replace('_', '-')[:40]}-{number}"
        (tmp_path / number).mkdir()
        made[name or number] = Board(mqtt_broker, prefix, tmp_path / number, **mqtt)
        return made[name or number]

    yield make
    for one in made.values():
        one.close()


def test_commands_are_off_by_default(board: Callable[..., Board]) -> None:
    """Finding: a client with no credentials started indefinite maintenance and spent the cloud budget."""
    assert MqttSettings(host="broker").commands == []
    off = board()
    off.send("press-1", "maintenance", '{"on": true}')
    off.send("press-1", "snooze", "604800")
    off.send("press-1", "escalate", "PRESS")
    off.settle()
    assert not off.book.quiet("press-1") and off.actions() == [] and off.requested == []
    assert off.sink.discovery is not None  # and it declares no buttons or switches for Home Assistant
    configs = off.sink.discovery.messages(ASSETS[0], alerts=True, commands=off.settings.commands)
    assert configs and not any("/button/" in m.topic or "/switch/" in m.topic for m in configs)


def test_commands_are_on_per_kind(board: Callable[..., Board]) -> None:
    some = board(commands=["check", "snooze"])
    some.send("press-1", "maintenance", "ON")
    some.send("press-1", "escalate", "")
    some.send("press-1", "check", "PRESS")
    some.send("press-1", "snooze", "600")
    some.settle()
    assert some.requested == [("press-1", "check")] and some.actions() == ["snoozed"]


@pytest.mark.parametrize(("command", "payload"), [
    ("maintenance", '{"on": "OFF"}'),  # started maintenance: a non-empty string was truthy
    ("maintenance", '{"on": true, "duration_s": 1e12}'),  # beyond alerts.maintenance_max_s
    ("maintenance", '{"on": true, "by": "%s"}' % ("x" * (MAX_TEXT + 1))),  # longer than HTTP allows
    ("maintenance", '{"on": true, "reason": "typo of note"}'),  # unknown key
    ("maintenance", "yes"),
    ("snooze", '{"off": "true"}'),  # snoozed: the string was not the boolean
    ("snooze", "604801"),  # beyond alerts.snooze_max_s
    ("snooze", "nan"),
    ("snooze", '{"duration_s": true}'),
    ("acknowledge", "x" * (MAX_TEXT + 1)),
    ("acknowledge", json.dumps({"by": "b" * 1_000_000})),  # was stored, then hung the notifier
    ("maintenance", "[" * 8000 + "]" * 8000),
    ("maintenance", b"\xff\xfeON"),
])
def test_a_payload_outside_the_schema_does_nothing(board: Callable[..., Board], command: str,
                                                   payload: str | bytes) -> None:
    strict = board(commands=ALL, commands_per_minute=600)
    strict.send("press-1", command, payload)
    strict.settle()
    assert strict.actions() == [] and not strict.book.quiet("press-1")


def test_malformed_json_never_means_off(board: Callable[..., Board]) -> None:
    """Finding: malformed JSON stopped maintenance."""
    strict = board(commands=ALL)
    strict.book.start_maintenance("press-1", "ben", "seal change")
    strict.book.snooze("pump-2", "ben", 600)
    strict.send("press-1", "maintenance", '{"on": false')
    strict.send("pump-2", "snooze", '{"off": tru')
    strict.settle()
    assert strict.book.quiet("press-1") and strict.actions() == ["maintenance_started"]
    assert strict.actions("pump-2") == ["snoozed"]


def test_the_plain_and_json_forms_home_assistant_and_people_send(board: Callable[..., Board]) -> None:
    strict = board(commands=ALL)
    strict.send("press-1", "maintenance", '{"on": true, "by": "ben", "note": "seal", "duration_s": 3600}')
    strict.send("press-1", "maintenance", "off")
    strict.send("press-1", "snooze", '{"duration_s": 120, "by": "anna"}')
    strict.send("press-1", "snooze", "OFF")
    strict.send("press-1", "snooze", "PRESS")  # the default length
    strict.settle()
    events = list(reversed(strict.book.store.events("press-1")))
    assert [(e.action, e.actor) for e in events] == [("maintenance_started", "ben"), ("maintenance_stopped", "mqtt"),
                                                     ("snoozed", "anna"), ("unsnoozed", "mqtt"), ("snoozed", "mqtt")]
    assert events[0].detail["maintenance_until"] == strict.clock.now + 3600


def test_a_retained_command_is_not_carried_out_even_when_delivered_live(board: Callable[..., Board]) -> None:
    """Finding: with MQTT 3.1.1 the broker clears the retain flag on live delivery, so a retained
    ``maintenance/set ON`` published while the board was connected was carried out."""
    live = board(commands=ALL)
    try:
        live.send("press-1", "maintenance", "ON", retain=True)
        live.settle()
        assert not live.book.quiet("press-1") and live.actions() == []
        again = board(commands=ALL, topic_prefix=live.prefix, client_id="second-board")  # subscribes after it
        again.settle()
        assert not again.book.quiet("press-1") and again.actions() == []
    finally:
        live.send("press-1", "maintenance", b"", retain=True)  # clear it from the shared broker


def test_commands_are_rate_limited_per_asset_and_command(board: Callable[..., Board]) -> None:
    limited = board(commands=ALL, commands_per_minute=3)
    for _ in range(20):
        limited.send("press-1", "snooze", "60")
        limited.send("press-1", "escalate", "PRESS")
    limited.send("pump-2", "snooze", "60")  # another asset has its own allowance
    limited.settle()
    assert limited.actions() == ["snoozed"] * 3 and limited.actions("pump-2") == ["snoozed"]
    assert limited.requested == [("press-1", "escalate")] * 3


def test_mqtt_3_1_1_brokers_still_work_and_the_board_says_what_it_cannot_tell(
        board: Callable[..., Board], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.outputs.mqtt"):
        old = board(commands=["check"], protocol="3.1.1")
    assert "retained command published while the board is connected" in caplog.text
    old.send("pump-2", "check", "PRESS")
    old.settle()
    assert old.requested == [("pump-2", "check")]


def test_the_rate_limit_opens_again_after_a_minute() -> None:
    now = [0.0]
    limit = RateLimit(2, "test", clock=lambda: now[0])
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    assert limit.allow("b")  # per key
    now[0] = 59.9
    assert not limit.allow("a")
    now[0] = 60.0  # the first two have left the window
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    now[0] = 90.0
    assert not limit.allow("a")


def test_parse_names_what_is_wrong() -> None:
    with pytest.raises(FieldError, match="unknown field"):
        mqtt_commands.parse("acknowledge", b'{"by": "anna", "on": true}')
    with pytest.raises(FieldError, match=f"nested more than {MAX_DEPTH}"):
        mqtt_commands.parse("acknowledge", b'{"note": ' + b"[" * 20 + b"]" * 20 + b"}")
    with pytest.raises(FieldError, match='"on" must be true or false'):
        mqtt_commands.parse("maintenance", b'{"on": "OFF"}')
    assert mqtt_commands.parse("acknowledge", b"  anna ") == mqtt_commands.Command("acknowledge", "anna")


_PAYLOADS = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.sampled_from([b"ON", b"OFF", b"PRESS", b"3600", b"-5", b"1e400", b"{}", b"null", b"[]"]),
    st.dictionaries(st.sampled_from(["on", "off", "by", "note", "duration_s", "x"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=600),
                              st.lists(st.integers(), max_size=3)), max_size=4).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(ALL), payload=_PAYLOADS)
def test_fuzzed_payloads_through_the_broker(board: Callable[..., Board], command: str, payload: bytes) -> None:
    """Whatever arrives: the network thread survives, nothing is stored that HTTP would refuse, and
    only a well-formed payload changes anything."""
    fuzz = board("fuzz", commands=ALL, commands_per_minute=600)
    before = len(fuzz.book.store.events(limit=1000))
    fuzz.send("press-1", command, payload)
    fuzz.settle()
    events = fuzz.book.store.events(limit=1000)
    try:
        understood = mqtt_commands.parse(command, payload)
    except FieldError:
        assert len(events) == before, f"{payload!r} was refused by the schema but changed something"
        return
    for event in events[: len(events) - before]:
        assert len(event.actor or "") <= MAX_TEXT and len(event.note or "") <= MAX_TEXT
        assert event.actor == understood.by
    mode = fuzz.book.store.mode("press-1")
    for until in (mode.snoozed_until, mode.maintenance_until):
        assert until is None or until - fuzz.clock.now <= AlertsSettings().maintenance_max_s

