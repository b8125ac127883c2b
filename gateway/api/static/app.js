// LEARNAE gateway dashboard: plain JavaScript + SVG, no external resources.
"use strict";

const REFRESH_MS = 5000;
const SAMPLES = 120;
const EVENTS = 20;  // anomaly events fetched per device
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#2f6f4f", "#c0622b", "#3b6fb6", "#8a4fb0", "#b0344f", "#4f8a8a", "#8a7a2f"];

function $(id) { return document.getElementById(id); }

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

function ago(ts) {
  if (ts === null || ts === undefined) return "never";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function fmt(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  const a = Math.abs(x);
  return a >= 1000 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toPrecision(3);
}

// One sparkline: readings oldest first; anomalous readings marked with a red dot, the
// stretches of the gateway's anomaly events on this channel shaded.
function sparkline(points, bands) {
  const w = 200, h = 28, pad = 3;
  const node = svg("svg", { class: "spark", viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: "none" });
  const finite = points.filter(p => Number.isFinite(p.v));
  if (finite.length === 0) return node;
  let lo = Math.min(...finite.map(p => p.v)), hi = Math.max(...finite.map(p => p.v));
  if (hi === lo) { hi += 1; lo -= 1; }
  const n = Math.max(points.length - 1, 1);
  const xy = (i, v) => [pad + (i / n) * (w - 2 * pad), h - pad - ((v - lo) / (hi - lo)) * (h - 2 * pad)];
  const coords = [];
  points.forEach((p, i) => { if (Number.isFinite(p.v)) coords.push(xy(i, p.v).map(c => c.toFixed(1)).join(",")); });
  for (const [a, b] of bands || []) {
    const x0 = xy(a, lo)[0] - 2, x1 = xy(b, lo)[0] + 2;
    node.appendChild(svg("rect", { class: "event", x: x0.toFixed(1), y: 0,
                                   width: Math.max(x1 - x0, 6).toFixed(1), height: h }));
  }
  node.appendChild(svg("polyline", { points: coords.join(" "), "vector-effect": "non-scaling-stroke" }));
  points.forEach((p, i) => {
    if (p.anomaly && Number.isFinite(p.v)) {
      const [x, y] = xy(i, p.v);
      node.appendChild(svg("circle", { class: "anomaly", cx: x.toFixed(1), cy: y.toFixed(1), r: 2.2 }));
    }
  });
  return node;
}

// Index range [first, last] of the readings an event spans (events are on the gateway's grid,
// so a reading belongs to one within half its spacing); null when outside the readings shown.
function eventSpan(rows, ev) {
  if (rows.length === 0) return null;
  const half = rows.length > 1 ? Math.abs(rows[rows.length - 1].ts - rows[0].ts) / (rows.length - 1) / 2 : 0;
  let a = -1, b = -1;
  rows.forEach((s, i) => { if (s.ts >= ev.start - half && s.ts <= ev.end + half) { if (a < 0) a = i; b = i; } });
  return a < 0 ? null : [a, b];
}

function renderDevice(device, samples, events) {
  const card = el("div", { class: "device", "data-device": device.id });
  const title = el("h3");
  title.appendChild(el("span", { class: "dot" + (device.online ? " online" : ""),
                                 title: device.online ? "online" : "offline" }));
  title.appendChild(el("span", {}, device.id));
  card.appendChild(title);
  card.appendChild(el("div", { class: "meta" },
    `${device.online ? "online" : "offline"} · ${device.stored} readings · last seen ${ago(device.last_seen)}`
    + (device.firmware ? ` · fw ${device.firmware}` : "")));
  const rows = samples.slice().reverse();  // API gives newest first
  const channels = [];
  for (const s of rows) for (const c of Object.keys(s.values)) if (!channels.includes(c)) channels.push(c);
  const anomalies = rows.filter(s => s.anomaly).length;
  for (const c of channels) {
    const line = el("div", { class: "channel", "data-channel": c });
    line.appendChild(el("span", {}, c));
    const points = rows.map(s => ({ v: s.values[c] === null || s.values[c] === undefined ? NaN : s.values[c],
                                    anomaly: s.anomaly }));
    const bands = (events || []).filter(e => e.channels.includes(c))
      .map(e => eventSpan(rows, e)).filter(x => x !== null);
    line.appendChild(sparkline(points, bands));
    const last = points.length ? points[points.length - 1].v : NaN;
    line.appendChild(el("span", { class: "value" }, fmt(last)));
    card.appendChild(line);
  }
  if (anomalies) card.appendChild(el("div", { class: "anomalies" },
    `${anomalies} anomal${anomalies === 1 ? "y" : "ies"} in the last ${rows.length} readings`));
  if (events && events.length) {
    const e = events[0];  // newest first
    card.appendChild(el("div", { class: "events" },
      `${events.length}${events.length >= EVENTS ? "+" : ""} anomaly event${events.length === 1 ? "" : "s"}`
      + ` · latest: ${e.kind === "level_shift" ? "level shift" : "anomaly"} on ${e.channels.join(", ")}`
      + ` ${e.open ? "(open)" : ago(e.end)}, peak ${fmt(e.peak)}`));
  }
  return card;
}

async function refreshDevices() {
  const page = await getJSON("/api/devices?limit=50");
  $("device-count").textContent = `(${page.total})`;
  $("devices-empty").hidden = page.items.length > 0;
  const samples = await Promise.all(page.items.map(d =>
    getJSON(`/api/devices/${encodeURIComponent(d.id)}/samples?limit=${SAMPLES}`)
      .then(r => r.items).catch(() => [])));
  const events = await Promise.all(page.items.map(d =>
    getJSON(`/api/devices/${encodeURIComponent(d.id)}/anomalies?limit=${EVENTS}`).catch(() => [])));
  const cards = page.items.map((d, i) => renderDevice(d, samples[i], events[i]));
  $("devices").replaceChildren(...cards);
}

function lossOf(r) {
  const m = r.metrics || {};
  for (const k of ["val_loss", "validation_loss", "test_mse", "loss", "train_mse", "train_loss"]) {
    if (Number.isFinite(m[k])) return [k, m[k]];
  }
  return [null, NaN];
}

function renderCurve(rounds) {
  const chart = $("training-chart"), legend = $("training-legend");
  const byPeer = new Map();
  let metricName = null;
  for (const r of rounds) {
    const [k, v] = lossOf(r);
    if (!Number.isFinite(v)) continue;
    metricName = metricName || k;
    if (!byPeer.has(r.peer_id)) byPeer.set(r.peer_id, []);
    byPeer.get(r.peer_id).push([r.round, v, r.anchored === true]);
  }
  $("training-empty").hidden = byPeer.size > 0;
  if (byPeer.size === 0) { chart.replaceChildren(); legend.replaceChildren(); return; }
  const all = [...byPeer.values()].flat();
  const w = Math.max(320, chart.clientWidth || 640), h = 220, l = 48, r = 40, t = 10, b = 26;
  let x0 = Math.min(...all.map(p => p[0])), x1 = Math.max(...all.map(p => p[0]));
  let y0 = Math.min(...all.map(p => p[1])), y1 = Math.max(...all.map(p => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y1 += 0.5; y0 = Math.max(0, y0 - 0.5); }
  const sx = x => l + (x - x0) / (x1 - x0) * (w - l - r);
  const sy = y => t + (1 - (y - y0) / (y1 - y0)) * (h - t - b);
  const node = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "training curve" });
  node.appendChild(svg("line", { class: "axis", x1: l, y1: h - b, x2: w - r, y2: h - b }));
  node.appendChild(svg("line", { class: "axis", x1: l, y1: t, x2: l, y2: h - b }));
  for (const [y, label] of [[y0, fmt(y0)], [y1, fmt(y1)]]) {
    const text = svg("text", { x: l - 4, y: sy(y) + 4, "text-anchor": "end" });
    text.textContent = label; node.appendChild(text);
  }
  for (const x of [x0, x1]) {
    const text = svg("text", { x: sx(x), y: h - 8, "text-anchor": "middle" });
    text.textContent = "round " + x; node.appendChild(text);
  }
  const items = [];
  [...byPeer.entries()].forEach(([peer, points], i) => {
    const color = COLORS[i % COLORS.length];
    points.sort((a, c) => a[0] - c[0]);
    node.appendChild(svg("polyline", { stroke: color, "data-peer": peer,
      points: points.map(p => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") }));
    // rounds anchored on the ledger are drawn as larger rings
    for (const p of points) node.appendChild(svg("circle", p[2]
      ? { cx: sx(p[0]), cy: sy(p[1]), r: 4, fill: "none", stroke: color, class: "anchored" }
      : { cx: sx(p[0]), cy: sy(p[1]), r: 2, fill: color }));
    const last = points[points.length - 1];
    const anchored = points.filter(p => p[2]).length;
    const item = el("span", { style: `--c: ${color}` }, `${peer.slice(0, 16)}: ${metricName} ${fmt(last[1])} (round ${last[0]}${anchored ? `, ${anchored} anchored` : ""})`);
    items.push(item);
  });
  chart.replaceChildren(node);
  legend.replaceChildren(...items);
}

function renderPeers(peers) {
  const body = $("peers").querySelector("tbody");
  $("peers-empty").hidden = peers.enabled;
  $("peers").hidden = !peers.enabled;
  body.replaceChildren(...peers.items.map(p => {
    const tr = el("tr", { "data-peer": p.peer_id });
    tr.appendChild(el("td", { title: p.peer_id }, p.peer_id.slice(0, 20) + (p.is_self ? " (this gateway)" : "")));
    tr.appendChild(el("td", { class: "num" }, p.last_round === null || p.last_round === undefined ? "–" : String(p.last_round)));
    tr.appendChild(el("td", { class: "num" }, p.samples === null || p.samples === undefined ? "–" : String(p.samples)));
    tr.appendChild(el("td", { class: "num" }, fmt(lossOf({ metrics: p.metrics })[1])));
    tr.appendChild(el("td", {}, ago(p.last_seen)));
    return tr;
  }));
}

function renderModels(models) {
  const box = $("model");
  if (!models || models.length === 0) { box.replaceChildren(el("p", { class: "muted" }, "No model yet.")); return; }
  const table = el("table", { id: "models" });
  const head = el("tr");
  for (const h of ["device", "version", "trained", "samples", "metrics", "rejected since", "download"]) head.appendChild(el("th", {}, h));
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  for (const m of models) {
    const tr = el("tr", { "data-model": m.device || "" });
    tr.appendChild(el("td", {}, m.device || "–"));
    tr.appendChild(el("td", { class: "num" }, String(m.version)));
    tr.appendChild(el("td", {}, ago(m.created)));
    tr.appendChild(el("td", { class: "num" }, m.samples === null || m.samples === undefined ? "–" : String(m.samples)));
    tr.appendChild(el("td", {}, Object.entries(m.metrics || {}).slice(0, 4).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")));
    // versions the promotion guard kept from deployment, newest first, with its reason
    // (the answer lists the newest few; rejected_count says how many there were)
    const rejected = (m.rejected || []).slice().reverse();
    tr.appendChild(el("td", { class: "rejected", title: rejected.map((r) => `v${r.version}: ${r.reason}`).join("\n") },
      rejected.length === 0 ? "–" : `${m.rejected_count}: v${rejected[0].version} ${rejected[0].reason || rejected[0].result || ""}`));
    const links = el("td");
    for (const [fmtName, href] of Object.entries(m.artifacts || {})) {
      links.appendChild(el("a", { href, download: "", class: "download", "data-format": fmtName }, fmtName));
      links.appendChild(document.createTextNode(" "));
    }
    tr.appendChild(links);
    body.appendChild(tr);
  }
  box.replaceChildren(table);
}

async function refresh() {
  try {
    const overview = await getJSON("/api/overview");
    $("gateway-id").textContent = overview.gateway;
    const why = overview.reason ? ` (${overview.reason})` : "";
    $("service-state").textContent = `${overview.status}${why} · up ${Math.round(overview.uptime_s)} s · ${overview.parts.join(", ")}`;
    renderModels(overview.models);
    renderPeers(overview.peers);
    const [rounds] = await Promise.all([getJSON("/api/rounds?limit=500"), refreshDevices()]);
    renderCurve(rounds);
    $("updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.loaded = "1";
  } catch (err) {
    $("service-state").textContent = "gateway unreachable: " + err.message;
  }
}

$("refresh-s").textContent = String(REFRESH_MS / 1000);
refresh();
setInterval(refresh, REFRESH_MS);
