// Rezolus viewer page: lays out the sections the server planned, fetches each
// chart's downsampled data for the current range and draws it with uPlot.
// Invariants: the range lives in the URL (?start=&end=, ms since the epoch;
// ms since each start when comparing), so a view can be shared; zooming one
// chart re-fetches every chart for the new range; nulls from the server are
// drawn as gaps, never as zero.  Comparing (two files) and live (an agent)
// are in modes.js; this file calls its hooks (window.rezolusModes).  The first
// charts are asked for before uPlot has loaded (it loads async): the page plan
// is embedded in the page, and drawing waits for the library, not the fetch.
"use strict";

const PALETTE = ["#3557d4", "#e8743b", "#19a979", "#c94dab", "#945ecf", "#13a4b4",
  "#d6a000", "#ed4a7b", "#6f8a2e", "#525df4", "#bf399e", "#8e6c3c"];
const HEAT_STOPS = [[252, 253, 191], [254, 176, 120], [241, 96, 93], [183, 55, 121], [114, 31, 129], [44, 17, 95]];
const PCT_COLORS = { p50: "#1d7a46", "p99": "#1c4fd8", "p99.9": "#111827" };
const state = { info: null, range: null, charts: [], generation: 0, mode: "single", focus: null };
// A recording of several hosts (mode "hosts") is viewed one host at a time: ?instance=HOST, passed to the API.
const INSTANCE = new URLSearchParams(location.search).get("instance") || "";
function withInstance(q) { if (INSTANCE) q.set("instance", INSTANCE); return q; }
const modes = window.rezolusModes;
const uplotLoaded = window.uPlot ? Promise.resolve() : new Promise((ok, bad) => {
  const tag = document.getElementById("uplot");
  tag.addEventListener("load", ok);
  tag.addEventListener("error", () => bad(new Error("the chart library did not load")));
});

// ---------- formatting ----------
function si(v, digits = 3) {
  const a = Math.abs(v);
  const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [f, s] of units) if (a >= f) return +(v / f).toPrecision(digits) + s;
  return a === 0 ? "0" : +v.toPrecision(digits) + "";
}
function bytes(v) {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return +v.toPrecision(3) + " " + units[i];
}
function duration(ns) {
  const a = Math.abs(ns);
  if (a >= 1e9) return +(ns / 1e9).toPrecision(3) + " s";
  if (a >= 1e6) return +(ns / 1e6).toPrecision(3) + " ms";
  if (a >= 1e3) return +(ns / 1e3).toPrecision(3) + " µs";
  return +ns.toPrecision(3) + " ns";
}
function formatter(unit) {
  if (unit === "percent") return v => v.toFixed(v < 10 ? 2 : 1) + "%";
  if (unit === "ratio" || unit === "cores") return v => +v.toPrecision(3) + "";
  if (unit === "bytes") return bytes;
  if (unit === "bytes/s") return v => bytes(v) + "/s";
  if (unit === "ns") return duration;
  if (unit === "s/s") return v => +v.toPrecision(3) + " s/s";
  if (unit.endsWith("/s")) return v => si(v) + "/s";
  return v => si(v);
}
function fmtOrDash(f) { return (u, v) => (v == null ? "–" : f(v)); }
function timeValues(u, splits, ax, space, incr) {
  if (state.mode === "compare") return splits.map(s => modes.relative(s));
  return splits.map((s, i) => {
    const d = new Date(s * 1e3).toISOString();
    const day = d.slice(5, 10), prev = i > 0 ? new Date(splits[i - 1] * 1e3).toISOString().slice(5, 10) : null;
    if (incr >= 86400) return day;
    const hm = incr < 60 ? d.slice(11, 19) : d.slice(11, 16);
    return day !== prev ? hm + "\n" + day : hm;
  });
}
function axisSize(u, values) {
  if (!values) return 50;
  return 20 + 7.2 * Math.max(3, ...values.map(v => String(v).length));
}
function yAxis(f, extra) {
  return Object.assign({ size: axisSize, values: (u, vals) => vals.map(v => (v == null ? "" : f(v))),
    grid: { stroke: "rgba(0,0,0,.07)" }, ticks: { stroke: "rgba(0,0,0,.15)" } }, extra);
}
const X_AXIS = { space: 50, values: timeValues, grid: { stroke: "rgba(0,0,0,.07)" }, ticks: { stroke: "rgba(0,0,0,.15)" } };
function decades(u, ax, min, max) {
  // grid lines of a log axis only at powers of ten
  const out = [];
  for (let v = 10 ** Math.floor(Math.log10(Math.max(min, 1))); v <= max * 1.0001; v *= 10) if (v >= min * 0.9999) out.push(v);
  return out;
}
function utc(ms) { return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"); }

// ---------- range and URL ----------
function fullRange() { return modes.fullRange(state); }
function readRange() {
  const q = new URLSearchParams(location.search);
  const s = Number(q.get("start")), e = Number(q.get("end"));
  const full = fullRange();
  if (Number.isFinite(s) && Number.isFinite(e) && q.has("start") && q.has("end") && s < e) {
    return [Math.max(s, full[0]), Math.min(e, full[1])];
  }
  return full;
}
function isFull(r) {
  const full = fullRange();
  return r[0] <= full[0] && r[1] >= full[1];
}
function setRange(range, push = true, only = null) {
  state.range = range;
  if (state.mode === "live") { modes.liveRange(state, range, only); return; }
  const url = new URL(location.href);
  if (isFull(range)) { url.searchParams.delete("start"); url.searchParams.delete("end"); }
  else { url.searchParams.set("start", Math.round(range[0])); url.searchParams.set("end", Math.round(range[1])); }
  if (push && url.href !== location.href) history.pushState(null, "", url);
  document.getElementById("range-text").textContent = (state.mode === "compare"
    ? `${modes.relative(range[0] / 1e3)} → ${modes.relative(range[1] / 1e3)} since each start`
    : `${utc(range[0])} → ${utc(range[1])}`) + (isFull(range) ? "" : " (zoomed)");
  state.generation++;
  for (const c of state.charts) c.card.dataset.state = "loading";
  loadAll();
}

// ---------- heatmap painting ----------
function heatColor(t) {
  const x = Math.min(Math.max(t, 0), 1) * (HEAT_STOPS.length - 1);
  const i = Math.min(Math.floor(x), HEAT_STOPS.length - 2), f = x - i;
  const a = HEAT_STOPS[i], b = HEAT_STOPS[i + 1];
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(",")})`;
}
function binEdges(xs) {
  // bin j covers (x[j-1], x[j]]; the first bin is as wide as the second.
  const w0 = xs.length > 1 ? xs[1] - xs[0] : 1;
  return xs.map((x, j) => [j === 0 ? x - w0 : xs[j - 1], x]);
}
function paintCells(u, cells) {
  // cells: { xs, rows: [[y0, y1]], values: [[v per row] | null per bin], max }
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, width, height);
  ctx.clip();
  const edges = binEdges(cells.xs);
  const logMax = Math.log1p(cells.max);
  const shade = cells.linear ? v => v / cells.max : v => Math.log1p(v) / logMax;
  for (let j = 0; j < edges.length; j++) {
    const col = cells.values[j];
    if (!col) continue;
    const x0 = Math.floor(u.valToPos(edges[j][0], "x", true));
    const x1 = Math.ceil(u.valToPos(edges[j][1], "x", true));
    if (x1 < left || x0 > left + width) continue;
    for (let k = 0; k < col.length; k++) {
      const v = col[k];
      if (!v) continue;
      const y0 = u.valToPos(cells.rows[k][1], "y", true), y1 = u.valToPos(cells.rows[k][0], "y", true);
      ctx.fillStyle = heatColor(cells.max > 0 ? shade(v) : 0);
      ctx.fillRect(x0, Math.floor(y0), Math.max(x1 - x0, 1), Math.max(Math.ceil(y1 - y0), 1));
    }
  }
  ctx.restore();
}
function scaleBar(label, max, fmt, linear = false) {
  const div = document.createElement("div");
  div.className = "scale";
  const cv = document.createElement("canvas");
  cv.width = 120; cv.height = 8;
  const g = cv.getContext("2d");
  for (let i = 0; i < 120; i++) { g.fillStyle = heatColor(i / 119); g.fillRect(i, 0, 1, 8); }
  div.append(label + " 0", cv, fmt(max) + (linear ? "" : " (log)"));
  return div;
}

// ---------- chart construction ----------
function baseOpts(c, width, extra) {
  return Object.assign({
    width, height: 230,
    tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    cursor: { sync: { key: "rezolus" }, drag: { x: true, y: false, setScale: false }, bind: {
      dblclick: () => () => { modes.resetZoom(state); return null; },
    } },
    legend: { live: true },
    hooks: { setSelect: [u => onSelect(u)] },
    scales: { x: { time: state.mode !== "compare", range: () => [state.range[0] / 1e3, state.range[1] / 1e3] } },
  }, extra);
}
function onSelect(u) {
  if (u.select.width < 3) return;
  const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
  u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
  if (state.mode === "live") state.paused = true;
  setRange([a * 1e3, b * 1e3]);
}
function lineChart(c, data, width) {
  const f = formatter(data.unit);
  const series = [{ label: "time", value: (u, v) => (v == null ? "–" : modes.timeLabel(state, v)) }];
  data.series.forEach((s, i) => series.push(Object.assign({
    label: s.label, stroke: PALETTE[(s.color ?? i) % PALETTE.length], width: 1.5, spanGaps: false,
    points: { show: false }, value: fmtOrDash(f),
  }, modes.seriesStyle(state, c, s))));
  const opts = baseOpts(c, width, {
    series,
    axes: [X_AXIS, yAxis(f, data.unit === "ns" ? { splits: decades } : {})],
  });
  let values = data.series.map(s => s.values);
  if (data.unit === "ns") {
    // latencies span decades: a log axis, with 0 ns drawn at 1 ns
    values = values.map(vs => vs.map(v => (v == null ? v : Math.max(v, 1))));
    opts.scales.y = { distr: 3, range: (u, lo, hi) => [10 ** Math.floor(Math.log10(Math.max(lo ?? 1, 1))),
      10 ** Math.ceil(Math.log10(Math.max(hi ?? 10, 10)))] };
  } else {
    opts.scales.y = { range: (u, lo, hi) => [Math.min(0, lo ?? 0), hi > 0 ? hi * 1.08 : 1] };
  }
  return new uPlot(opts, [data.x, ...values], c.plot);
}
window.rezolusDraw = { lineChart };
function histogramChart(c, data, width) {
  const f = formatter(data.unit);
  const h = data.heatmap;
  const rows = h.lower.map((lo, k) => [Math.max(lo, 1), h.upper[k] + 1]);
  let max = 0;
  for (const col of h.rates) if (col) for (const v of col) if (v > max) max = v;
  const cells = { xs: data.x, rows, values: h.rates, max };
  const series = [{ label: "time", value: (u, v) => (v == null ? "–" : utc(v * 1e3)) }];
  data.series.forEach(s => series.push({
    label: s.label, stroke: PCT_COLORS[s.label] || "#111", width: s.label === "p50" ? 1.5 : 1.25,
    dash: s.label === "p99.9" ? [4, 3] : undefined, spanGaps: false, points: { show: false }, value: fmtOrDash(f),
  }));
  const lo = rows.length ? rows[0][0] : 1, hi = rows.length ? rows[rows.length - 1][1] : 10;
  const opts = baseOpts(c, width, {
    series,
    axes: [X_AXIS, yAxis(f, { splits: decades })],
  });
  opts.scales.y = { distr: 3, range: () => [10 ** Math.floor(Math.log10(lo)), 10 ** Math.ceil(Math.log10(Math.max(hi, lo * 2)))] };
  opts.hooks.drawClear = [u => paintCells(u, cells)];
  const plot = new uPlot(opts, [data.x, ...data.series.map(s => s.values)], c.plot);
  c.plot.append(scaleBar("count/s", max, v => si(v)));
  return plot;
}
function cpuHeatmap(c, data, width) {
  const f = formatter(data.unit);
  const n = data.rows.length;
  let max = 0;
  for (const r of data.matrix) for (const v of r) if (v != null && v > max) max = v;
  const values = data.x.map((_, j) => {
    const col = data.matrix.map(r => r[j]);
    return col.every(v => v == null) ? null : col;
  });
  const cells = { xs: data.x, rows: data.rows.map((_, k) => [k - 0.5, k + 0.5]), values, max, linear: true };
  const series = [{ label: "time", value: (u, v) => (v == null ? "–" : utc(v * 1e3)) },
    { label: "mean of CPUs", stroke: "#111827", width: 1.25, scale: "m", show: false, points: { show: false }, spanGaps: false,
      value: fmtOrDash(f) }];
  const opts = baseOpts(c, width, {
    series,
    axes: [X_AXIS, yAxis(v => (Number.isInteger(v) ? "cpu " + v : ""), { splits: () => data.rows.map((_, k) => k).filter(k => n <= 16 || k % Math.ceil(n / 16) === 0) }),
      { scale: "m", show: false }],
  });
  opts.scales.y = { range: () => [-0.5, n - 0.5] };
  opts.scales.m = { range: (u, lo, hi) => [0, Math.max(hi ?? 0, 1) * 1.05] };
  opts.hooks.drawClear = [u => paintCells(u, cells)];
  const plot = new uPlot(opts, [data.x, data.series[0].values], c.plot);
  c.plot.append(scaleBar(data.unit, max, f, true));
  return plot;
}

// ---------- loading ----------
function countPoints(data) {
  let n = 0;
  for (const s of data.series) for (const v of s.values) if (v != null) n++;
  return n;
}
async function fetchChart(c, points, range, extra = {}) {
  const q = new URLSearchParams(Object.assign({ id: c.meta.id, points,
    start: BigInt(Math.floor(range[0])) * 1000000n, end: BigInt(Math.ceil(range[1])) * 1000000n }, extra));
  const resp = await fetch("/api/chart?" + withInstance(q));
  const data = await resp.json();
  if (!resp.ok) throw new Error(data.error || resp.statusText);
  return data;
}
async function loadChart(c, gen) {
  const width = Math.max(c.card.clientWidth - 26, 300);
  const points = Math.min(Math.max(Math.round(width / (c.meta.kind === "line" ? 1 : 3)), 60), 2000);
  let data;
  try {
    data = state.mode === "compare" ? await modes.fetchPair(state, c, points, fetchChart)
      : await fetchChart(c, points, state.range);
    await uplotLoaded;
  } catch (err) {
    if (gen !== state.generation) return;
    c.card.classList.add("error");
    c.plot.textContent = "could not load: " + err.message;
    c.card.dataset.state = "error";
    return;
  }
  if (gen !== state.generation) return;
  if (c.uplot) { c.uplot.destroy(); c.uplot = null; }
  c.plot.textContent = "";
  c.card.classList.remove("empty", "error");
  const points_ = countPoints(data) + (data.heatmap ? data.heatmap.rates.filter(Boolean).length : 0);
  c.note.textContent = data.total_series > data.series.length ? `top ${data.series.length} of ${data.total_series}` : "";
  if (!data.x.length) {
    c.card.classList.add("empty");
    c.plot.textContent = "no data in this range";
  } else if (data.kind === "heatmap") c.uplot = histogramChart(c, data, width);
  else if (data.kind === "cpu_heatmap") c.uplot = cpuHeatmap(c, data, width);
  else c.uplot = lineChart(c, data, width);
  c.card.dataset.points = points_;
  c.card.dataset.state = "ready";
  c.card.dataset.generation = gen;
  c.card.dataset.lastX = data.x.length ? data.x[data.x.length - 1] : "";
}
async function loadAll(only = null) {
  const gen = state.generation;
  // within a section, line charts first: they are cheap, heatmaps build histogram indexes
  const order = c => [c.card.closest("section").dataset.section, c.meta.kind === "line" ? 0 : 1];
  const sections = state.info.sections.map(s => s.id);
  const rank = c => { const [s, k] = order(c); return sections.indexOf(s) * 2 + k; };
  const queue = (only ? state.charts.filter(only) : state.charts.slice()).sort((a, b) => rank(a) - rank(b));
  const worker = async () => {
    while (queue.length && gen === state.generation) await loadChart(queue.shift(), gen);
  };
  // the page's first chart is asked alone: answers computed side by side on a few cores all come late
  if (!only && queue.length) await loadChart(queue.shift(), gen);
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (gen === state.generation) document.body.dataset.loaded = String(gen);
}

// ---------- layout ----------
function layout(info) {
  const main = document.getElementById("sections");
  const nav = document.getElementById("nav");
  main.textContent = "";
  nav.textContent = "";
  for (const c of state.charts) if (c.uplot) c.uplot.destroy();
  state.charts = [];
  for (const s of info.sections) {
    const sec = document.createElement("section");
    sec.id = "section-" + s.id;
    sec.dataset.section = s.id;
    const h = document.createElement("h2");
    h.textContent = s.title;
    const grid = document.createElement("div");
    grid.className = "grid";
    sec.append(h, grid);
    main.append(sec);
    const a = document.createElement("a");
    a.href = "#" + sec.id;
    a.textContent = s.title;
    nav.append(a);
    for (const meta of s.charts) {
      const card = document.createElement("div");
      card.className = "card";
      card.dataset.chart = meta.id;
      card.dataset.kind = meta.kind;
      card.dataset.state = "loading";
      const title = document.createElement("h3");
      const unit = meta.kind === "heatmap" ? "latency / value" : meta.unit;
      title.innerHTML = "";
      title.append(meta.title);
      const u = document.createElement("span");
      u.className = "unit";
      u.textContent = unit;
      title.append(u);
      const note = document.createElement("div");
      note.className = "note";
      const plot = document.createElement("div");
      plot.className = "plot";
      card.append(title, note, plot);
      grid.append(card);
      state.charts.push({ meta, card, plot, note, uplot: null });
    }
  }
}
async function start() {
  // the server embeds /api/info's answer for this URL; without it (live, or an error to show) ask
  const embedded = document.getElementById("rezolus-info").textContent;
  const resp = embedded.startsWith("{") ? null : await fetch("/api/info?" + withInstance(new URLSearchParams()));
  const info = resp ? await resp.json() : JSON.parse(embedded);
  if (resp && !resp.ok) {
    document.getElementById("status").textContent = info.error || resp.statusText;
    return;
  }
  state.info = info;
  state.mode = info.mode || "single";
  document.body.dataset.mode = state.mode;
  if (state.mode === "live") { modes.startLive(state); return; }
  document.getElementById("file").textContent = modes.describe(info);
  modes.hostSelector(info, INSTANCE);
  document.title = `Rezolus · ${state.mode === "compare" ? info.sides.base.file + " vs " + info.sides.target.file : info.file}`;
  layout(info);
  if (state.mode === "compare") modes.startCompare(state);
  document.getElementById("reset").onclick = () => modes.resetZoom(state);
  window.addEventListener("popstate", () => setRange(readRange(), false));
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => setRange(state.range, false), 250);
  });
  setRange(readRange(), false);
}
window.rezolusViewer = state;  // for tests and for poking around in the console
window.rezolusApp = { uplotLoaded, setRange, loadAll, layout, loadChart, fullRange, utc, formatter };
start();
