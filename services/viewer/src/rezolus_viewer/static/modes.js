// Rezolus viewer modes beside one file: comparing two files (both drawn on
// time since each start, with the ranking of `rezolus compare` as a table
// whose rows open the chart of their series) and live (an agent's last
// minutes, polled at the agent's interval).  app.js calls these hooks.
// Invariants: compare charts are line charts (heatmaps become their
// percentile lines) with one series per side; a side whose part of the
// range is empty is left out, never drawn as zeros; live mode follows the
// newest row until the user zooms (then it pauses until Reset zoom).
"use strict";

const SIDES = ["base", "target"];
const app = () => window.rezolusApp;

function pad(n) { return String(Math.floor(n)).padStart(2, "0"); }
function relative(s) {
  const sign = s < 0 ? "-" : "+", a = Math.abs(s);
  if (a >= 3600) return `${sign}${Math.floor(a / 3600)}:${pad((a % 3600) / 60)}:${pad(a % 60)}`;
  return `${sign}${pad(a / 60)}:${pad(a % 60)}` + (a < 60 && a % 1 ? (a % 1).toFixed(1).slice(1) : "");
}
function interval(ns) { return ns >= 1e9 ? ns / 1e9 + " s" : ns / 1e6 + " ms"; }
function describe(info) {
  if (info.mode === "compare") {
    const b = info.sides.base, t = info.sides.target;
    return `${b.file} (base, ${b.hostname || "?"}) vs ${t.file} (target, ${t.hostname || "?"}) · ` +
      `every ${interval(b.interval_ns)} / ${interval(t.interval_ns)}`;
  }
  return `${info.file} · ${info.hostname || "unknown host"} · ${info.rows} rows every ${interval(info.interval_ns)}` +
    (info.breaks ? ` · ${info.breaks} gaps/restarts` : "");
}
function fullRange(state) {
  const info = state.info;
  if (state.mode === "compare") {
    const spans = SIDES.map(s => (info.sides[s].end_ns - info.sides[s].start_ns) / 1e6);
    return [0, Math.max(...spans)];
  }
  if (state.mode === "live") return [info.end_ns / 1e6 - info.window_ns / 1e6, info.end_ns / 1e6];
  return [info.start_ns / 1e6, info.end_ns / 1e6];
}
function timeLabel(state, v) {
  return state.mode === "compare" ? relative(v) : app().utc(v * 1e3);
}
function resetZoom(state) {
  if (state.mode === "live") state.paused = false;
  app().setRange(fullRange(state));
}

// ---------- hosts ----------
function hostSelector(info, instance) {
  if (!info.hosts || info.hosts.length < 2) return;
  const select = document.createElement("select");
  select.id = "host";
  select.title = "Host shown (this recording holds several)";
  const shown = instance || info.hosts[0];
  for (const h of info.hosts) select.append(new Option(h, h, false, h === shown));
  select.onchange = () => {
    const url = new URL(location.href);
    url.searchParams.set("instance", select.value);
    url.searchParams.delete("start"); url.searchParams.delete("end");
    location.href = url.href;
  };
  document.getElementById("file").after(select);
}

// ---------- compare ----------
function seriesStyle(state, c, s) {
  const style = {};
  if (s.side === "target") style.dash = [6, 3];
  const focus = state.focus;
  if (focus && focus.chart === c.meta.id && s.base !== undefined) {
    if (s.base === focus.label) style.width = 2.5;
    else style.alpha = 0.25;
  }
  return style;
}
function asLines(data) {
  // a heatmap is drawn as its percentile lines, a CPU heatmap as its mean line
  if (data.kind === "heatmap") return { kind: "line", unit: data.unit, x: data.x, series: data.series };
  if (data.kind === "cpu_heatmap") return { kind: "line", unit: data.unit, x: data.x, series: data.series };
  return data;
}
async function fetchPair(state, c, points, fetchChart) {
  const focus = state.focus && state.focus.chart === c.meta.id ? { focus: state.focus.label } : {};
  const parts = await Promise.all(SIDES.map(async side => {
    const info = state.info.sides[side], s0 = info.start_ns / 1e6, e0 = info.end_ns / 1e6;
    const range = [Math.max(s0 + state.range[0], s0), Math.min(s0 + state.range[1], e0)];
    if (!(range[0] < range[1])) return null;
    const data = asLines(await fetchChart(c, points, range, Object.assign({ side }, focus)));
    return { side, data, x: data.x.map(x => +(x - s0 / 1e3).toFixed(3)) };
  }));
  const got = parts.filter(p => p && p.data.x.length);
  const labels = [];
  for (const p of got) for (const s of p.data.series) if (!labels.includes(s.label)) labels.push(s.label);
  const tables = got.map(p => [p.x, ...p.data.series.map(s => s.values)]);
  await app().uplotLoaded;
  const joined = tables.length ? uPlot.join(tables) : [[]];
  const series = [];
  got.forEach(p => p.data.series.forEach(s => series.push({
    label: `${s.label} · ${p.side}`, base: s.label, side: p.side, color: labels.indexOf(s.label), values: null })));
  series.forEach((s, i) => { s.values = Array.from(joined[i + 1], v => (v === undefined ? undefined : v)); });
  const first = got.length ? got[0].data : { unit: c.meta.unit };
  const total = Math.max(0, ...got.map(p => p.data.total_series || 0));
  return { id: c.meta.id, kind: "line", unit: first.unit, x: Array.from(joined[0]), series, total_series: total > series.length / Math.max(got.length, 1) ? total : 0 };
}
function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
}
function number(v) { return v == null ? "–" : +Number(v).toPrecision(4) + ""; }
function seriesName(row) {
  const labels = Object.entries(row.series.labels || {}).map(([k, v]) => `${k}=${v}`).join(",");
  const q = row.series.quantile == null ? "" : ` p${row.series.quantile}`;
  return row.series.metric + (labels ? `{${labels}}` : "") + q;
}
function openRow(state, row) {
  state.focus = { chart: row.chart, label: row.label };
  const c = state.charts.find(x => x.meta.id === row.chart);
  if (!c) return;
  for (const other of state.charts) other.card.classList.remove("focused");
  c.card.classList.add("focused");
  c.card.dataset.focus = row.label;
  c.card.scrollIntoView({ block: "center" });
  c.card.dataset.state = "loading";
  app().loadChart(c, state.generation);
}
async function startCompare(state) {
  const panel = document.createElement("section");
  panel.id = "section-ranking";
  panel.dataset.section = "ranking";
  panel.innerHTML = "<h2>What changed (rezolus compare)</h2><p class='status'>Ranking…</p>";
  document.getElementById("sections").prepend(panel);
  const resp = await fetch("/api/compare");
  const body = await resp.json();
  const status = panel.querySelector(".status");
  if (!resp.ok) { status.textContent = "cannot compare: " + body.error; panel.dataset.state = "error"; return; }
  status.textContent = (body.note ? body.note + ". " : "") +
    "Significant changes first (Welch test, false discovery rate controlled); click a row to open its chart.";
  const table = document.createElement("table");
  table.className = "ranking";
  table.innerHTML = "<thead><tr><th>#</th><th>series</th><th>kind</th><th>base</th><th>target</th>" +
    "<th>change</th><th>significant</th></tr></thead>";
  const tbody = document.createElement("tbody");
  body.rows.forEach((row, i) => {
    const tr = document.createElement("tr");
    cell(tr, row.only_in ? "" : String(i + 1));
    cell(tr, seriesName(row), "name");
    cell(tr, row.kind);
    cell(tr, number(row.base));
    cell(tr, number(row.target));
    const rel = row.relative_change;
    cell(tr, row.only_in ? `only in ${row.only_in}` : (rel == null ? "–" : (rel * 100).toFixed(1) + "%"));
    cell(tr, row.significant ? "yes" : "", row.significant ? "yes" : "");
    if (row.chart && !row.only_in) {
      tr.dataset.chart = row.chart;
      tr.dataset.label = row.label;
      tr.tabIndex = 0;
      tr.onclick = () => openRow(state, row);
      tr.onkeydown = e => { if (e.key === "Enter") openRow(state, row); };
    }
    tbody.append(tr);
  });
  table.append(tbody);
  const wrap = document.createElement("div");
  wrap.className = "ranking-wrap";
  wrap.append(table);
  panel.append(wrap);
  panel.dataset.state = "ready";
}

// ---------- live ----------
function liveRange(state, range, only) {
  document.getElementById("range-text").textContent =
    `${app().utc(range[0])} → ${app().utc(range[1])}` + (state.paused ? " (paused: zoomed)" : " (live)");
  state.generation++;
  const visible = only || (c => c.visible !== false);
  for (const c of state.charts) if (visible(c)) c.card.dataset.state = "loading";
  app().loadAll(visible);
}
function observe(state) {
  const seen = new IntersectionObserver(entries => {
    for (const e of entries) {
      const c = state.charts.find(x => x.card === e.target);
      if (!c) continue;
      const was = c.visible;
      c.visible = e.isIntersecting;
      if (c.visible && was === false) app().loadAll(x => x === c);
    }
  });
  for (const c of state.charts) seen.observe(c.card);
}
async function startLive(state) {
  state.paused = false;
  state.layoutVersion = -1;
  document.getElementById("reset").onclick = () => resetZoom(state);
  const tick = async () => {
    let info;
    try {
      const resp = await fetch("/api/info");
      info = await resp.json();
    } catch (err) {
      document.getElementById("file").textContent = "viewer unreachable: " + err.message;
      return;
    }
    const src = info.source || "agent";
    if (info.waiting) {
      document.getElementById("file").textContent = `live · waiting for the first frame from ${src}`;
      return;
    }
    const moved = !state.info || state.info.end_ns !== info.end_ns;
    state.info = info;
    document.getElementById("file").textContent =
      `live · ${src} · ${info.hostname || "unknown host"} · ${info.rows} rows every ${interval(info.interval_ns)}` +
      (info.breaks ? ` · ${info.breaks} gaps/restarts` : "");
    document.title = `Rezolus · live · ${info.hostname || src}`;
    if (info.layout !== state.layoutVersion) {
      state.layoutVersion = info.layout;
      app().layout(info);
      observe(state);
      app().setRange(state.paused ? state.range : fullRange(state), false, () => true);
    } else if (moved && !state.paused) {
      app().setRange(fullRange(state), false);
    }
  };
  const loop = async () => {
    await tick();
    const every = Math.max((state.info && state.info.interval_ns) || 1e9, 250e6) / 1e6;
    setTimeout(loop, every);
  };
  loop();
}

window.rezolusModes = {
  relative, describe, fullRange, timeLabel, resetZoom, hostSelector, seriesStyle, fetchPair, startCompare, liveRange, startLive,
};
