// One verdict in full: the frame, the headline, the reasons, the sensor trend around it, and
// "was this right?" (mark it wrong, undo a correction).
"use strict";

import { clock, get, post, setList, showStatus } from "./api.js";
import { plot, series } from "./chart.js";

const WINDOW_S = 6 * 3600; // trend shown before and after the verdict
const MAX_PLOTS = 3;

let shown = null; // the verdict on screen

function correctionText(event) {
  const d = event.detail;
  const what = event.action === "marked_wrong"
    ? `marked wrong: it was ${d.label === "normal" ? "OK" : d.label}${d.not_learned ? ` (${d.not_learned})` : ""}`
    : "correction undone";
  return `${clock(event.at)} · ${event.actor} ${what}${event.note ? `: ${event.note}` : ""}`;
}

function renderCorrections(view, verdict) {
  const list = view.querySelector(".v-corrections");
  list.replaceChildren(...verdict.corrections.map((event) => {
    const item = document.createElement("li");
    item.textContent = correctionText(event);
    return item;
  }));
  const latest = verdict.corrections[0];
  const open = latest && latest.action === "marked_wrong";
  view.querySelector(".v-undo").hidden = !open;
  view.querySelector(".v-correct").hidden = Boolean(open);
}

// onChange: refresh the overview after a correction; nameOf: asset id -> the name people know it by
export async function showVerdict(verdictId, onChange, nameOf) {
  const view = document.getElementById("verdict-view");
  view.dataset.ready = "";
  try {
    const verdict = await get(`/api/verdicts/${verdictId}`);
    shown = verdict;
    view.dataset.verdict = verdict.verdict;
    view.querySelector(".v-asset").textContent = nameOf(verdict.asset);
    view.querySelector(".v-headline").textContent = verdict.headline.text;
    view.querySelector(".v-when").textContent =
      `${verdict.verdict} · ${(verdict.confidence * 100).toFixed(0)} % confident · ${clock(verdict.timestamp)}`;
    setList(view.querySelector(".v-reasons"), verdict.reasons);
    const figure = view.querySelector(".v-frame");
    figure.hidden = !verdict.frame_url;
    if (verdict.frame_url) figure.querySelector("img").src = URL.createObjectURL(await get(verdict.frame_url, "blob"));
    const since = verdict.timestamp - WINDOW_S;
    const around = await get(`/api/verdicts?asset=${encodeURIComponent(verdict.asset)}&since=${since}&limit=1000`);
    const nearby = around.verdicts.filter((v) => v.timestamp <= verdict.timestamp + WINDOW_S);
    view.querySelector(".v-plots").replaceChildren(
      ...series(nearby, MAX_PLOTS).map(([name, points]) => plot(name, points, verdict.timestamp)));
    renderCorrections(view, verdict);
    view.dataset.ready = String(verdictId);
  } catch (error) {
    showStatus(error.message, true);
  }
  // one way to send a correction or its undo, then redraw this view and the overview
  const send = async (path, body) => {
    try {
      await post(path, body);
      showStatus("Saved. Thank you: the board learns from this.", false);
    } catch (error) {
      showStatus(error.message, true);
      return;
    }
    await showVerdict(shown.id, onChange, nameOf);
    onChange();
  };
  view.onclick = (event) => {
    const button = event.target.closest("button");
    if (!button || !shown) return;
    if (button.dataset.label === "ok") send(`/api/verdicts/${shown.id}/correction`, { label: "ok" });
    if (button.classList.contains("v-undo")) send(`/api/corrections/correction-${shown.id}/undo`, {});
  };
  view.querySelector(".v-other").onsubmit = (event) => {
    event.preventDefault();
    const label = view.querySelector(".v-label").value.trim();
    if (label && shown) send(`/api/verdicts/${shown.id}/correction`, { label });
  };
}
