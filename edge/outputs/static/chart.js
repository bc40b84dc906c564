// Sensor trends drawn as SVG from the API's verdicts: no chart library, nothing to download.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const SENSOR_KINDS = new Set(["vibration", "thermal", "sensor"]);

// "<sensor> <feature>" -> [[timestamp, value], ...] oldest first, from the sensors' evidence
export function series(verdicts, limit) {
  const found = new Map();
  for (const verdict of [...verdicts].sort((a, b) => a.timestamp - b.timestamp)) {
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
  return [...found.entries()].slice(0, limit);
}

function node(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function text(x, y, content, anchor) {
  const label = node("text", { x, y, "text-anchor": anchor });
  label.textContent = content;
  return label;
}

// A small sparkline for the overview card.
export function sparkline(name, points) {
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
  const svg = node("svg", { viewBox: "0 0 100 30", preserveAspectRatio: "none", role: "img",
    "aria-label": `${name} trend` });
  const step = points.length > 1 ? 100 / (points.length - 1) : 0;
  svg.append(node("polyline", { points: values.map((value, index) =>
    `${(index * step).toFixed(2)},${(28 - ((value - low) / span) * 26).toFixed(2)}`).join(" ") }));
  wrapper.append(label, svg);
  return wrapper;
}

// A plot with time on x, the value range on y and a marker at the verdict's time.
export function plot(name, points, markS) {
  const [width, height, left, bottom] = [320, 150, 44, 20];
  const times = points.map((point) => point[0]);
  const values = points.map((point) => point[1]);
  const [t0, t1] = [Math.min(...times, markS), Math.max(...times, markS)];
  const [low, high] = [Math.min(...values), Math.max(...values)];
  const spanT = t1 - t0 || 1;
  const spanV = high - low || 1;
  const x = (t) => left + ((t - t0) / spanT) * (width - left - 6);
  const y = (v) => 8 + (1 - (v - low) / spanV) * (height - bottom - 16);
  const figure = document.createElement("figure");
  figure.className = "plot";
  const caption = document.createElement("figcaption");
  caption.textContent = name;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${name} over time` });
  svg.append(
    node("line", { x1: left, y1: y(high), x2: width - 6, y2: y(high), class: "grid" }),
    node("line", { x1: left, y1: y(low), x2: width - 6, y2: y(low), class: "grid" }),
    text(left - 4, y(high) + 4, high.toPrecision(3), "end"),
    text(left - 4, y(low) + 4, low.toPrecision(3), "end"),
    text(left, height - 4, new Date(t0 * 1000).toLocaleTimeString([], { timeStyle: "short" }), "start"),
    text(width - 6, height - 4, new Date(t1 * 1000).toLocaleTimeString([], { timeStyle: "short" }), "end"),
    node("line", { x1: x(markS), y1: 4, x2: x(markS), y2: height - bottom, class: "mark" }),
    node("polyline", { points: points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }),
  );
  figure.append(caption, svg);
  return figure;
}
