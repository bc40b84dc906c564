"""The technician's loop on the status page, in a real headless Chromium at phone size driven over
the DevTools protocol: headline, acknowledge, snooze, maintenance, the per-verdict view with its
trend plot, "it was OK" and undo. Each step is checked in the page and in the board's store.

Screenshots go to the test's folder; with EDGEWATCH_SCREENSHOTS=<dir> they are also kept there
(docs/img/ holds the ones the docs show)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.samples import verdict
from edge.evidence import Condition
from tests.alerts_support import TOKEN, Board, board
from tests.browser import PHONE, Browser, chromium

FAULT_RGB = (198, 40, 40)  # --fault in style.css


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[tuple[Board, Browser]]:
    chromium()
    with board(tmp_path / "board") as live, Browser(tmp_path / "profile") as browser:
        browser.open(f"{live.api.url}/#token={TOKEN}")
        yield live, browser


def card(asset: str, selector: str) -> str:
    return f"document.querySelector('#asset-{asset} {selector}')"


def text(browser: Browser, asset: str, selector: str) -> str:
    return str(browser.js(f"{card(asset, selector)}?.textContent ?? ''"))


def click(browser: Browser, selector: str) -> None:
    browser.js(f"document.querySelector({json.dumps(selector)}).click()")


def keep(shot: Path) -> Path:
    target = os.environ.get("EDGEWATCH_SCREENSHOTS")
    if target:
        shutil.copy(shot, Path(target) / shot.name)
    image = Image.open(shot)
    assert image.size == PHONE, f"{shot.name} is {image.size}, not phone size"
    return shot


def test_acknowledge_snooze_and_maintenance_from_the_phone(page: tuple[Board, Browser], tmp_path: Path) -> None:
    live, browser = page
    browser.wait(f"{card('press-1', '.headline')}?.textContent.startsWith('Outer-race')")
    assert text(browser, "press-1", ".headline") == "Outer-race bearing defect, drive end - plan a bearing replacement"
    assert "nobody has acknowledged" in text(browser, "press-1", ".alert-state")
    assert text(browser, "pump-2", ".headline") == "Running normally"
    assert browser.js(f"{card('pump-2', '[data-action=acknowledge]')}.hidden") is True  # nothing to acknowledge
    assert browser.js(f"{card('press-1', '.numbers')}.open") is False  # the numbers are one tap away
    assert "envelope peak at 108.0 Hz" in text(browser, "press-1", ".reasons")
    shot = keep(browser.screenshot(tmp_path / "technician-alert.png"))
    red = np.all(np.abs(np.asarray(Image.open(shot).convert("RGB")).astype(int) - FAULT_RGB) < 12, axis=-1).sum()
    assert red > 1000, "the acknowledge button and fault colour are not on screen"

    click(browser, "#asset-press-1 [data-action=acknowledge]")  # no name yet: refused, nothing changes
    browser.wait("document.getElementById('status').textContent.includes('Type your name')")
    assert live.alerts.store.open_alert("press-1").state == "raised"  # type: ignore[union-attr]

    browser.js("const w = document.getElementById('who'); w.value = 'anna'; w.dispatchEvent(new Event('change'))")
    browser.js(f"{card('press-1', '.note')}.value = 'bearing ordered'")
    click(browser, "#asset-press-1 [data-action=acknowledge]")
    browser.wait(f"{card('press-1', '.alert-state')}.textContent.startsWith('Acknowledged by anna')")
    acked = live.alerts.store.open_alert("press-1")
    assert acked is not None and (acked.acknowledged_by, acked.note) == ("anna", "bearing ordered")
    assert browser.js(f"{card('press-1', '[data-action=acknowledge]')}.hidden") is True
    keep(browser.screenshot(tmp_path / "technician-acknowledged.png"))

    click(browser, "#asset-press-1 [data-action=snooze]")
    browser.wait(f"{card('press-1', '.alert-state')}.textContent.includes('snoozed until')")
    assert live.alerts.status("press-1")["mode"] == "snoozed"
    assert text(browser, "press-1", "[data-action=snooze]") == "End snooze"
    click(browser, "#asset-press-1 [data-action=snooze]")
    browser.wait(f"!{card('press-1', '.alert-state')}.textContent.includes('snoozed')")
    assert live.alerts.status("press-1")["mode"] == "normal"

    browser.js(f"{card('pump-2', '.note')}.value = 'seal change'")
    click(browser, "#asset-pump-2 [data-action=maintenance]")
    browser.wait(f"{card('pump-2', '')}.dataset.mode === 'maintenance'")
    assert text(browser, "pump-2", ".alert-state") == "Maintenance by anna: seal change"
    assert live.alerts.quiet("pump-2")
    keep(browser.screenshot(tmp_path / "technician-maintenance.png"))
    click(browser, "#asset-pump-2 [data-action=maintenance]")
    browser.wait(f"{card('pump-2', '')}.dataset.mode === 'normal'")
    assert not live.alerts.quiet("pump-2")

    live.clock.now += 60  # the machine is fixed: the next check is ok and clears the alert
    live.alerts.observe(verdict("press-1", Condition.OK, 0.95, live.clock.now), None)
    browser.wait(f"{card('press-1', '')}.dataset.alert === 'none'", timeout_s=15)  # the page polls every 5 s
    actions = [e.action for e in reversed(live.alerts.store.events())]
    assert actions == ["raised", "acknowledged", "snoozed", "unsnoozed", "maintenance_started",
                       "maintenance_stopped", "cleared"]


def test_verdict_view_plots_the_trend_and_takes_a_correction_with_undo(
        page: tuple[Board, Browser], tmp_path: Path) -> None:
    live, browser = page
    browser.js("const w = document.getElementById('who'); w.value = 'ben'; w.dispatchEvent(new Event('change'))")
    browser.wait(f"!{card('press-1', '.open-verdict')}.hidden")
    alert = live.alerts.store.open_alert("press-1")
    fault = None if alert is None or alert.verdict_id is None else live.history.get(alert.verdict_id)
    assert fault is not None and fault.verdict.condition is Condition.FAULT  # the verdict that raised the alert
    assert browser.js(f"{card('press-1', '.open-verdict')}.getAttribute('href')") == f"#verdict/{fault.id}"
    click(browser, "#asset-press-1 .open-verdict")
    browser.wait(f"document.getElementById('verdict-view').dataset.ready === '{fault.id}'")
    view = "document.getElementById('verdict-view')"
    assert browser.js(f"{view}.querySelector('.v-headline').textContent").startswith("Outer-race bearing defect")
    assert browser.js(f"{view}.querySelector('.v-frame img').src").startswith("blob:")
    assert browser.js(f"{view}.querySelector('.v-frame img').naturalWidth") == 320  # the saved frame, decoded
    plots = browser.js(f"[...{view}.querySelectorAll('.plot')].map(p => [p.querySelector('figcaption')"
                       ".textContent, p.querySelector('polyline').getAttribute('points').split(' ').length])")
    assert ["drive_end velocity_rms_mm_s", 12] in plots  # the twelve checks around the verdict
    assert browser.js(f"{view}.querySelectorAll('.plot .mark').length") == len(plots)  # the verdict's time
    keep(browser.screenshot(tmp_path / "technician-verdict.png"))

    click(browser, "#verdict-view [data-label=ok]")
    browser.wait(f"{view}.querySelector('.v-corrections').textContent.includes('ben marked wrong: it was OK')")
    memory = live.corrections.memory("press-1")
    assert [(e.label, e.severity) for e in memory.examples] == [("normal", "ok")]
    assert browser.js(f"{view}.querySelector('.v-undo').hidden") is False
    click(browser, "#verdict-view .v-undo")
    browser.wait(f"{view}.querySelector('.v-corrections').textContent.includes('correction undone')")
    assert live.corrections.memory("press-1").examples == []

    browser.js(f"{view}.querySelector('.v-label').value = 'misalignment'")
    browser.js(f"{view}.querySelector('.v-other').requestSubmit()")
    browser.wait(f"{view}.querySelector('.v-corrections').textContent.includes('it was misalignment')")
    assert [e.label for e in live.corrections.memory("press-1").examples] == ["misalignment"]
    click(browser, "#verdict-view .back")
    browser.wait("!document.getElementById('assets').hidden")


def test_the_machine_that_needs_someone_comes_first(page: tuple[Board, Browser]) -> None:
    live, browser = page
    live.alerts.observe(verdict("press-1", Condition.OK, 0.95, live.clock.now), None)  # press fixed
    live.alerts.observe(verdict("pump-2", Condition.WARNING, 0.8, live.clock.now), None)  # pump starts
    top = "[...document.querySelectorAll('.asset')].sort((a, b) => a.getBoundingClientRect().top" \
          " - b.getBoundingClientRect().top).map(card => card.dataset.asset)"
    browser.wait(f"JSON.stringify({top}) === JSON.stringify(['pump-2', 'press-1'])", timeout_s=15)
