// A file's or folder's performance page: draws the series (uPlot) and names countries. No inline scripts (CSP).
// The figures are also in the table under the chart (<details>), so the chart adds nothing a reader needs.
import { uPlot } from "./vendor.js";

let charts = [];
let regions = null;
try {
  regions = new Intl.DisplayNames([document.documentElement.lang || "en"], { type: "region" });
} catch (e) {
  regions = null;
}

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function nameRegions(root) {
  root.querySelectorAll("[data-region]").forEach((el) => {
    const code = el.getAttribute("data-region");
    if (!regions || !/^[A-Z]{2}$/.test(code)) return;
    try {
      const name = regions.of(code);
      if (name && name !== code) { el.textContent = name; el.setAttribute("title", code); }
    } catch (e) { /* an unknown code stays as it is */ }
  });
}

// The chart's words, translated by the page (data-insight-messages); English when the attribute is missing.
const MESSAGES = {
  hour: "Hour (UTC)", day: "Day", week: "Week of", month: "Month",
  views: "Views", viewers: "Unique viewers", fails: "Failed loads", rate: "Fail rate",
};

function messages(el) {
  try {
    return { ...MESSAGES, ...JSON.parse(el.getAttribute("data-insight-messages") || "{}") };
  } catch (e) {
    return MESSAGES;
  }
}

// Month and weekday names for the axis and the legend in the page's language (uPlot's own are English).
function dateNames() {
  const lang = document.documentElement.lang || "en";
  if (lang === "en") return null;
  try {
    const month = (style) => Array.from({ length: 12 }, (_, m) =>
      new Intl.DateTimeFormat(lang, { month: style, timeZone: "UTC" }).format(new Date(Date.UTC(2024, m, 1))));
    const weekday = (style) => Array.from({ length: 7 }, (_, d) =>
      new Intl.DateTimeFormat(lang, { weekday: style, timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, 7 + d))));
    return { MMMM: month("long"), MMM: month("short"), WWWW: weekday("long"), WWW: weekday("short") };
  } catch (e) {
    return null;
  }
}

function chartHeight() {
  return window.matchMedia("(max-width: 640px)").matches ? 200 : 260;
}

function draw(el) {
  const UPlot = uPlot();
  if (el.getAttribute("data-drawn") === "yes" || !UPlot) return;
  let data;
  try { data = JSON.parse(el.getAttribute("data-insight-series")); } catch (e) { return; }
  el.setAttribute("data-drawn", "yes");
  const accent = cssVar("--accent", "#4f46e5");
  const danger = cssVar("--danger", "#dc2626");
  const viewers = cssVar("--teal", "#0d9488");
  const rate = cssVar("--amber", "#d97706");
  const grid = cssVar("--grey-100", "#eef0f3");
  const ink = cssVar("--grey-500", "#6b7280");
  const few = data.t.length <= 45;
  const hourly = data.bucket === "hour";
  const font = "12px system-ui, sans-serif";
  const words = messages(el);
  const names = dateNames();
  const first = words[data.bucket] || words.day;
  const opts = {
    width: Math.max(el.clientWidth, 200),
    height: chartHeight(),
    tzDate: (ts) => UPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
    ...(names ? { fmtDate: (tpl) => UPlot.fmtDate(tpl, names) } : {}),
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true },
      y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.1))] },
      pct: { range: (u, min, max) => [0, Math.max(10, Math.min(100, Math.ceil((max || 0) * 1.2)))] },
    },
    series: [
      { label: first, value: hourly ? "{D} {MMM} {HH}:00" : "{D} {MMM} {YYYY}" },
      { label: words.views, stroke: accent, width: 2, fill: "rgba(79, 70, 229, 0.08)", points: { show: few, size: 5, fill: accent } },
      { label: words.viewers, stroke: viewers, width: 1.5, points: { show: false } },
      { label: words.fails, stroke: danger, width: 2, points: { show: few, size: 5, fill: danger } },
      { label: words.rate, scale: "pct", stroke: rate, width: 1.5, dash: [5, 4], spanGaps: false,
        value: (u, v) => (v == null ? "—" : v.toFixed(1) + "%"), points: { show: false } },
    ],
    axes: [
      { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font },
      { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: 48, font,
        values: (u, splits) => splits.map((v) => (v >= 10000 ? Math.round(v / 1000) + "k" : v.toLocaleString())) },
      { scale: "pct", side: 1, stroke: ink, grid: { show: false }, ticks: { show: false }, size: 44, font,
        values: (u, splits) => splits.map((v) => v + "%") },
    ],
  };
  const chart = new UPlot(opts, [data.t, data.views, data.viewers, data.fails, data.rate], el);
  charts.push({ el, chart });
}

function resize() {
  charts = charts.filter((entry) => document.body.contains(entry.el));
  charts.forEach((entry) => entry.chart.setSize({ width: Math.max(entry.el.clientWidth, 200), height: chartHeight() }));
}

let pending = null;
window.addEventListener("resize", () => {
  if (pending) cancelAnimationFrame(pending);
  pending = requestAnimationFrame(resize);
});

function init() {
  document.querySelectorAll("[data-insight-series]").forEach(draw);
  nameRegions(document.body);
}

// uPlot is a deferred classic script: it has run before this module, which runs once the document is parsed.
init();
// The tables arrive after the headline figures (an HTMX fragment): name the countries in them too.
document.addEventListener("htmx:load", (event) => nameRegions(event.detail.elt));
