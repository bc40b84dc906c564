"""The status page rendered by a real headless Chromium against a real API server."""

from __future__ import annotations

import html.parser
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.samples import asset, verdict
from edge.evidence import Condition
from edge.outputs.config import HttpSettings
from edge.outputs.http_api import HttpApi
from edge.outputs.metrics import Metrics
from edge.store.history import History
from tests.browser import chromium

TOKEN = "status-page-token-0123456789"
PHONE = "412,915"  # CSS pixels of a common Android phone
FAULT_RGB = (198, 40, 40)  # --fault in style.css


def browse(url: str, profile: Path, *action: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, offline-friendly flags; virtual time lets the page's fetches finish."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--virtual-time-budget=8000", f"--window-size={PHONE}",
               "--hide-scrollbars", *action, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=True)


class Cards(html.parser.HTMLParser):
    """asset id -> {'data-verdict': ..., '<class>': text inside elements of that class, 'img': srcs, ...}."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, str]] = {}
        self._stack: list[tuple[str, str | None]] = []  # (tag, class) of open elements inside a card
        self._card: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "article" and (found.get("id") or "").startswith("asset-"):
            self._card = self.cards.setdefault(found["id"].removeprefix("asset-"), {})  # type: ignore[union-attr]
            self._card["data-verdict"] = found.get("data-verdict") or ""
            self._stack = []
        if self._card is not None:
            value = found.get("points") or found.get("src")
            if tag in ("polyline", "img") and value:
                self._card[tag] = self._card.get(tag, "") + value + ";"
            if tag not in ("img", "input", "br", "polyline"):
                self._stack.append((tag, found.get("class")))

    def handle_endtag(self, tag: str) -> None:
        if self._card is None or tag in ("img", "polyline"):
            return
        if not self._stack:
            self._card = None
            return
        self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._card is None:
            return
        for _, css_class in self._stack:
            if css_class:
                self._card[css_class] = self._card.get(css_class, "") + data


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[HttpApi]:
    history = History(tmp_path / "history.sqlite3")
    now_s = 1_790_000_000.0
    frame = np.zeros((240, 320, 3), np.uint8)  # (H, W, 3) uint8 RGB
    frame[60:180, 80:240] = (40, 90, 200)
    for index in range(12):
        history.add(verdict("pump-2", Condition.OK, 0.93, now_s + index * 60, velocity_rms_mm_s=1.2 + index / 20))
    for index in range(8):
        condition = Condition.FAULT if index == 7 else Condition.OK
        history.add(verdict("press-1", condition, 0.88, now_s + index * 60, velocity_rms_mm_s=2.0 + index,
                            escalated=condition is Condition.FAULT), frame=frame)
    history.add(verdict("mill-4", Condition.WARNING, 0.71, now_s), frame=frame[::-1].copy())
    settings = HttpSettings(port=0, token=TOKEN)
    assets = [asset("press-1", "Hydraulic press 1"), asset("pump-2", "Coolant pump"), asset("lathe-3", "Lathe 3"),
              asset("mill-4", "Mill 4")]
    with HttpApi(settings, history, Metrics(), assets, site="Plant A") as api:
        yield api
    history.close()


def test_status_page_shows_each_assets_verdict_in_a_real_browser(server: HttpApi, tmp_path: Path) -> None:
    page = f"{server.url}/#token={TOKEN}"
    dom = browse(page, tmp_path / "profile", "--dump-dom").stdout
    parser = Cards()
    parser.feed(dom)
    cards = parser.cards

    assert set(cards) == {"press-1", "pump-2", "lathe-3", "mill-4"}
    press, pump, lathe = cards["press-1"], cards["pump-2"], cards["lathe-3"]
    assert (press["data-verdict"], press["verdict"]) == ("fault", "fault")  # colour and badge
    assert press["name"] == "Hydraulic press 1" and press["confidence"].startswith("88 %")
    assert "ISO zone C" in press["reasons"]
    assert "cloud answered: fault — likely seal leak" in press["escalations"]  # the cloud's answer
    assert press["img"].startswith("blob:")  # the last frame, fetched with the token
    assert "drive_end velocity_rms_mm_s" in press["trends"] and len(press["polyline"].split()) >= 8
    assert (pump["data-verdict"], pump["verdict"]) == ("ok", "ok") and not pump.get("reasons")
    assert "img" not in pump  # ok verdicts keep no frame
    assert (lathe["data-verdict"], lathe["verdict"]) == ("unknown", "no verdict yet")
    mill = cards["mill-4"]
    assert (mill["data-verdict"], mill["verdict"]) == ("warning", "warning")
    assert mill["img"].startswith("blob:") and mill["img"] != press["img"]  # each card its own frame
    assert "4 assets, 2 need attention" in dom and "Plant A" in dom


def test_status_page_screenshot_shows_the_fault_colour(server: HttpApi, tmp_path: Path) -> None:
    shot = tmp_path / "status-page.png"
    browse(f"{server.url}/#token={TOKEN}", tmp_path / "profile", f"--screenshot={shot}")
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)  # (915, 412, 3)
    assert image.shape[:2] == (915, 412)
    red = np.all(np.abs(image - FAULT_RGB) < 12, axis=-1).sum()
    assert red > 1000, "the fault card's colour is not on screen"


def test_status_page_asks_for_the_token_without_it(server: HttpApi, tmp_path: Path) -> None:
    dom = browse(f"{server.url}/", tmp_path / "profile", "--dump-dom").stdout
    assert "This board needs its API token." in dom
    assert 'id="login"' in dom and 'id="login" hidden' not in dom
    assert "Hydraulic press 1" not in dom
