// edgewatch status page: polls the board's API and draws one card per asset.
// Plain browser JavaScript, no build step, no downloads: it has to work on a board with no internet.
// Text from the API (reasons, cloud answers) is only ever set as textContent, never as HTML.
"use strict";

const POLL_MS = 5000;
const HISTORY_POINTS = 60; // verdicts fetched per asset for trends and escalations
const MAX_TRENDS = 4;
const MAX_ESCALATIONS = 3;
const SENSOR_KINDS = new Set(["vibration", "thermal", "sensor"]);
const TOKEN_KEY = "edgewatch-token";
const SVG_NS = "http://www.w3.org/2000/svg";

const frames = new Map(); // asset id -> {url, objectUrl}: a frame URL never changes content

function token() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar
  }
  return localStorage.getItem(TOKEN_KEY);
}

class Unauthorized extends Error {}

async function get(path, as = "json") {
  const headers = {};
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("token needed");
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${path}: HTTP ${response.status}`);
  }
  return as === "blob" ? response.blob() : response.json();
}

function ago(timestampS) {
  const seconds = Math.max(0, Date.now() / 1000 - timestampS);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function card(asset) {
  let element = document.getElementById(`asset-${asset.id}`);
  if (!element) {
    element = document.getElementById("asset-card").content.firstElementChild.cloneNode(true);
    element.id = `asset-${asset.id}`;
    document.getElementById("assets").append(element);
  }
  return element;
}

function setList(list, items) {
  list.replaceChildren(...items.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
}

function renderState(element, asset) {
  const state = asset.latest;
  element.querySelector(".name").textContent = asset.name;
  element.dataset.verdict = state ? state.verdict : "unknown";
  element.querySelector(".verdict").textContent = state ? state.verdict : "no verdict yet";
  element.querySelector(".confidence").textContent =
    state ? `${(state.confidence * 100).toFixed(0)} % confident` : "";
  const checked = element.querySelector(".checked");
  checked.textContent = state ? `· checked ${ago(state.timestamp)}` : "";
  checked.dateTime = state ? state.checked_at : "";
  setList(element.querySelector(".reasons"), state ? state.reasons : []);
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

// feature name -> [[timestamp, value], ...] oldest first, from the sensors' evidence
function series(verdicts) {
  const found = new Map();
  for (const verdict of [...verdicts].reverse()) {
    for (const evidence of verdict.evidence) {
      if (!SENSOR_KINDS.has(evidence.kind)) continue;
      const sensor = evidence.source.split(":").pop();
      for (const [feature, value] of Object.entries(evidence.values)) {
        if (typeof value !== "number") continue;
        const key = `${sensor} ${feature}`;
        if (!found.has(key)) found.set(key, []);
        found.get(key).push([verdict.timestamp, value]);
      }
    }
  }
  return [...found.entries()].slice(0, MAX_TRENDS);
}

function trend(name, points) {
  const values = points.map((point) => point[1]);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const wrapper = document.createElement("div");
  wrapper.className = "trend";
  const label = document.createElement("div");
  label.className = "label";
  const title = document.createElement("span");
  title.textContent = name;
  const range = document.createElement("span");
  range.textContent = `${values[values.length - 1].toPrecision(3)} (${low.toPrecision(3)}–${high.toPrecision(3)})`;
  label.append(title, range);
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${name} trend`);
  const line = document.createElementNS(SVG_NS, "polyline");
  const step = points.length > 1 ? 100 / (points.length - 1) : 0;
  line.setAttribute("points", values.map((value, index) =>
    `${(index * step).toFixed(2)},${(28 - ((value - low) / span) * 26).toFixed(2)}`).join(" "));
  svg.append(line);
  wrapper.append(label, svg);
  return wrapper;
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
  element.querySelector(".trends").replaceChildren(...series(verdicts).map(([name, points]) => trend(name, points)));
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

function showStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

async function refresh() {
  try {
    const overview = await get("/api/assets");
    document.getElementById("site").textContent = overview.site === "edgewatch" ? "" : overview.site;
    document.getElementById("login").hidden = true;
    await Promise.all(overview.assets.map(refreshAsset));
    const attention = overview.assets.filter((asset) => asset.latest && asset.latest.needs_attention).length;
    showStatus(`Updated ${new Date().toLocaleTimeString()} · ${overview.assets.length} assets, ` +
      `${attention} need attention`, false);
  } catch (error) {
    if (error instanceof Unauthorized) {
      document.getElementById("login").hidden = false;
      showStatus("This board needs its API token.", true);
    } else {
      showStatus(`Cannot reach the board: ${error.message}`, true);
    }
  }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  refresh();
});

refresh();
setInterval(refresh, POLL_MS);
