// Talking to the board: the token, the technician's name, reads and writes.
// Writes are JSON POSTs with the token: the API refuses anything a page on another site could send.
"use strict";

const TOKEN_KEY = "edgewatch-token";
const WHO_KEY = "edgewatch-who";

export class Unauthorized extends Error {}

export function token() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname); // keep the token out of the address bar
  }
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  localStorage.setItem(TOKEN_KEY, value);
}

export function who() {
  return (localStorage.getItem(WHO_KEY) || "").trim();
}

export function setWho(value) {
  localStorage.setItem(WHO_KEY, value.trim());
}

async function call(path, options, as = "json") {
  const headers = options.headers || {};
  const secret = token();
  if (secret) headers.Authorization = `Bearer ${secret}`;
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("token needed");
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${path}: HTTP ${response.status}`);
  }
  return as === "blob" ? response.blob() : response.json();
}

export function get(path, as = "json") {
  return call(path, {}, as);
}

// every action names who did it: the board keeps it in the audit trail
export function post(path, body) {
  const name = who();
  if (!name) return Promise.reject(new Error("Type your name at the top first (it goes into the log)."));
  return call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ by: name, ...body }),
  });
}

export function ago(timestampS) {
  const seconds = Math.max(0, Date.now() / 1000 - timestampS);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function clock(timestampS) {
  return new Date(timestampS * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

export function showStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

export function setList(list, items) {
  list.replaceChildren(...items.map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
}
