// edgewatch status page: one card per asset that leads with what to do, actions a tap away.
// Plain browser JavaScript modules, no build step, no downloads: it has to work on a board with no internet.
// Text from the API (headlines, reasons, notes) is only ever set as textContent, never as HTML.
"use strict";

import { Unauthorized, ago, clock, get, post, setList, setToken, setWho, showStatus, token, who } from "./api.js";
import { series, sparkline } from "./chart.js";
import { showVerdict } from "./verdict.js";

const POLL_MS = 5000;
const HISTORY_POINTS = 60; // verdicts fetched per asset for trends and escalations
const MAX_TRENDS = 4;
const MAX_ESCALATIONS = 3;
const SNOOZE_S = 3600;

const frames = new Map(); // asset id -> {url, objectUrl}: a frame URL never changes content

function card(asset) {
  let element = document.getElementById(`asset-${asset.id}`);
  if (!element) {
    element = document.getElementById("asset-card").content.firstElementChild.cloneNode(true);
    element.id = `asset-${asset.id}`;
    element.dataset.asset = asset.id;
    document.getElementById("assets").append(element);
  }
  return element;
}

// What the alert means for the person holding the phone, in one line.
function alertLine(status) {
  if (!status) return "";
  if (status.mode === "maintenance") {
    const m = status.maintenance;
    const until = m.until ? ` until ${clock(m.until)}` : "";
    return m.scheduled ? `Planned maintenance${until}` : `Maintenance by ${m.by}${until}${m.note ? `: ${m.note}` : ""}`;
  }
  const alert = status.alert;
  const snoozed = status.snoozed_until ? ` · snoozed until ${clock(status.snoozed_until)}` : "";
  if (!alert) return snoozed ? `No open alert${snoozed}` : "";
  if (alert.state === "acknowledged") {
    return `Acknowledged by ${alert.acknowledged_by} ${ago(alert.acknowledged_at)}${alert.note ? `: ${alert.note}` : ""}${snoozed}`;
  }
  return `Alert raised ${ago(alert.raised_at)}, nobody has acknowledged it yet${snoozed}`;
}

function renderState(element, asset) {
  const state = asset.latest;
  const status = asset.alert;
  element.querySelector(".name").textContent = asset.name;
  element.dataset.verdict = state ? state.verdict : "unknown";
  element.dataset.mode = status ? status.mode : "normal";
  element.dataset.alert = status && status.alert ? status.alert.state : "none";
  element.querySelector(".verdict").textContent = state ? state.verdict : "no verdict yet";
  element.querySelector(".headline").textContent =
    status && status.mode === "maintenance" ? "In maintenance: not judged for alerts"
      : asset.headline ? asset.headline.text : "Waiting for the first check";
  element.querySelector(".alert-state").textContent = alertLine(status);
  element.querySelector(".confidence").textContent =
    state ? `${(state.confidence * 100).toFixed(0)} % confident` : "";
  const checked = element.querySelector(".checked");
  checked.textContent = state ? `· checked ${ago(state.timestamp)}` : "";
  checked.dateTime = state ? state.checked_at : "";
  setList(element.querySelector(".reasons"), state ? state.reasons : []);
  const open = status && status.alert;
  element.querySelector(".note").hidden = !status;
  const inMaintenance = status && status.mode === "maintenance";
  element.querySelector('[data-action="acknowledge"]').hidden = !open || open.state !== "raised" || inMaintenance;
  const snooze = element.querySelector('[data-action="snooze"]');
  snooze.hidden = !status || inMaintenance;
  snooze.textContent = status && status.snoozed_until ? "End snooze" : "Snooze 1 h";
  const maintenance = element.querySelector('[data-action="maintenance"]');
  maintenance.hidden = !status || (inMaintenance && status.maintenance.scheduled);
  maintenance.textContent = inMaintenance ? "End maintenance" : "Start maintenance";
  const details = element.querySelector(".open-verdict");
  const target = open ? open.verdict_id : asset.latest_id;
  details.hidden = !target;
  if (target) details.href = `#verdict/${target}`;
}

async function renderFrame(element, assetId, lastFrame) {
  const figure = element.querySelector(".frame");
  if (!lastFrame) {
    figure.hidden = true;
    return;
  }
  const url = lastFrame.anomaly_url || lastFrame.url; // the anomaly map drawn over the frame, when kept
  const cached = frames.get(assetId);
  if (!cached || cached.url !== url) {
    const objectUrl = URL.createObjectURL(await get(url, "blob"));
    if (cached) URL.revokeObjectURL(cached.objectUrl);
    frames.set(assetId, { url, objectUrl });
  }
  figure.querySelector("img").src = frames.get(assetId).objectUrl;
  figure.querySelector("figcaption").textContent =
    `Last saved frame: ${lastFrame.verdict}, ${ago(lastFrame.timestamp)}`;
  figure.hidden = false;
}

// the escalation record: {status: queued|answered|failed|skipped|..., condition, explanation, why, ...}
function escalationText(verdict) {
  const escalation = verdict.escalation || {};
  const said = escalation.explanation
    ? `${escalation.condition || ""} — ${escalation.explanation}`
    : escalation.why || "";
  const when = new Date(verdict.timestamp * 1000).toLocaleString();
  return `${when} · ${verdict.verdict} · cloud ${escalation.status || "queued"}${said ? `: ${said}` : ""}`;
}

function renderHistory(element, verdicts) {
  element.querySelector(".trends").replaceChildren(
    ...series(verdicts, MAX_TRENDS).map(([name, points]) => sparkline(name, points)));
  const escalated = verdicts.filter((verdict) => verdict.escalated).slice(0, MAX_ESCALATIONS);
  const section = element.querySelector(".escalations");
  setList(section.querySelector("ul"), escalated.map(escalationText));
  section.hidden = escalated.length === 0;
}

async function refreshAsset(asset) {
  const element = card(asset);
  renderState(element, asset);
  if (!asset.latest) return;
  const [latest, recent] = await Promise.all([
    get(`/api/assets/${encodeURIComponent(asset.id)}/latest`),
    get(`/api/verdicts?asset=${encodeURIComponent(asset.id)}&limit=${HISTORY_POINTS}`),
  ]);
  renderHistory(element, recent.verdicts);
  await renderFrame(element, asset.id, latest.last_frame);
}

let assets = new Map(); // id -> the last overview entry, for the actions

export async function refresh() {
  try {
    const overview = await get("/api/assets");
    assets = new Map(overview.assets.map((asset) => [asset.id, asset]));
    document.getElementById("site").textContent = overview.site === "edgewatch" ? "" : overview.site;
    document.getElementById("login").hidden = true;
    await Promise.all(overview.assets.map(refreshAsset));
    const attention = overview.assets.filter((asset) => asset.latest && asset.latest.needs_attention).length;
    const open = overview.assets.filter((asset) => asset.alert && asset.alert.alert &&
      asset.alert.alert.state === "raised").length;
    showStatus(`Updated ${new Date().toLocaleTimeString()} · ${overview.assets.length} assets, ` +
      `${attention} need attention, ${open} not acknowledged`, false);
  } catch (error) {
    if (error instanceof Unauthorized) {
      document.getElementById("login").hidden = false;
      showStatus("This board needs its API token.", true);
    } else {
      showStatus(`Cannot reach the board: ${error.message}`, true);
    }
  }
}

async function act(assetId, action) {
  const asset = assets.get(assetId);
  const status = asset && asset.alert;
  const path = `/api/assets/${encodeURIComponent(assetId)}/${action}`;
  const noteInput = document.getElementById(`asset-${assetId}`).querySelector(".note");
  const note = noteInput.value.trim();
  const done = {
    acknowledge: () => post(path, { note }),
    snooze: () => post(path, status && status.snoozed_until ? { off: true } : { duration_s: SNOOZE_S, note }),
    maintenance: () => {
      const on = !(status && status.mode === "maintenance");
      return post(path, on ? { on, note } : { on });
    },
  }[action];
  try {
    await done();
    noteInput.value = "";
    const said = {
      acknowledge: "acknowledged",
      snooze: status && status.snoozed_until ? "snooze ended" : "snoozed for 1 h",
      maintenance: status && status.mode === "maintenance" ? "maintenance ended" : "maintenance started",
    }[action];
    showStatus(`${asset ? asset.name : assetId}: ${said}`, false);
  } catch (error) {
    showStatus(error.message, true);
    if (!who()) document.getElementById("who").focus();
    return;
  }
  await refresh();
}

function route() {
  const match = /^#verdict\/(\d+)$/.exec(location.hash);
  document.getElementById("assets").hidden = Boolean(match);
  document.getElementById("verdict-view").hidden = !match;
  if (match) showVerdict(Number(match[1]), refresh, (id) => (assets.get(id) || { name: id }).name);
}

document.getElementById("assets").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button) act(button.closest(".asset").dataset.asset, button.dataset.action);
});

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  setToken(document.getElementById("token").value);
  refresh();
});

const whoInput = document.getElementById("who");
whoInput.value = who();
whoInput.addEventListener("change", () => setWho(whoInput.value));

token(); // a #token=... in the address is stored, then removed
window.addEventListener("hashchange", route);
route();
refresh();
setInterval(() => {
  if (document.getElementById("verdict-view").hidden) refresh();
}, POLL_MS);
