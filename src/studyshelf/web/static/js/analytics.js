// The analytics dashboard: draws the time series (uPlot), names countries, colours the world map by views or
// fail rate, and sends a click on a country through HTMX like any drill-down. No inline scripts (CSP).
// The words it shows are translated by the server (web/i18n.py) and passed as JSON data attributes
// (data-chart-messages, data-map-messages); English stays the fallback when an attribute is missing.
import { htmx, uPlot } from "./vendor.js";

const CHART_TEXT = {
  hour: "Hour",
  week: "Week of",
  day: "Day",
  views: "Views",
  fails: "Failed loads",
  previous: "Views, %(period)s",
  previous_period: "Views, previous period",
};
const MAP_TEXT = { show_only: "Show only this country" };

function messages(el, name, fallback) {
  let found = {};
  try { found = JSON.parse((el && el.getAttribute(name)) || "{}") || {}; } catch (e) { found = {}; }
  return { ...fallback, ...found };
}

// `%(name)s` placeholders are filled here.
function format(template, values) {
  return String(template || "").replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

function pageLang() {
  return document.documentElement.lang || "en";
}

// uPlot's own month and weekday names are English: give it the page language's (the browser knows them).
function dateNames() {
  try {
    const lang = pageLang();
    const months = (style) => Array.from({ length: 12 }, (_, m) => new Intl.DateTimeFormat(lang, { month: style, timeZone: "UTC" }).format(new Date(Date.UTC(2024, m, 1))));
    const days = (style) => Array.from({ length: 7 }, (_, d) => new Intl.DateTimeFormat(lang, { weekday: style, timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, 7 + d))));
    return { MMMM: months("long"), MMM: months("short"), WWWW: days("long"), WWW: days("short") };
  } catch (e) {
    return null;
  }
}

let charts = [];
let regions = null;
try {
  regions = new Intl.DisplayNames([pageLang()], { type: "region" });
} catch (e) {
  regions = null;
}

// uPlot writes axis dates the American way (8/14): in another language, the browser's own short dates and times.
function timeTicks(zone) {
  try {
    const lang = pageLang();
    const day = new Intl.DateTimeFormat(lang, { day: "numeric", month: "numeric", timeZone: zone });
    const hour = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", timeZone: zone });
    return (u, splits, axisIdx, space, incr) => splits.map((ts) => (incr < 86400 ? hour : day).format(new Date(ts * 1000)));
  } catch (e) {
    return undefined;
  }
}

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

function regionName(code) {
  if (!regions || !/^[A-Z]{2}$/.test(code)) return code;
  try { return regions.of(code) || code; } catch (e) { return code; }
}

// Countries are stored as ISO codes; the browser knows their names in the page's language.
function nameRegions(root) {
  root.querySelectorAll("[data-region]").forEach((el) => {
    const code = el.getAttribute("data-region");
    const name = regionName(code);
    if (name !== code) { el.textContent = name; el.setAttribute("title", code); }
  });
  root.querySelectorAll("select[data-region-options] option").forEach((option) => {
    if (option.value && option.textContent === option.value) option.textContent = regionName(option.value);
  });
  root.querySelectorAll(".world-map [data-country]").forEach((el) => {
    const label = regionName(el.getAttribute("data-country")) + ": " + el.getAttribute("data-figures");
    const text = messages(el.closest("[data-map]"), "data-map-messages", MAP_TEXT);
    if (el.hasAttribute("aria-label")) el.setAttribute("aria-label", label + ". " + text.show_only);
    const title = el.querySelector("title");
    if (title) title.textContent = label;
  });
}

// The map shades countries by views or by fail rate; the choice is the page's own, not a filter.
function initMap(card) {
  if (card.getAttribute("data-map-ready") === "yes") return;
  card.setAttribute("data-map-ready", "yes");
  card.querySelectorAll("[data-map-mode]").forEach((button) => {
    button.addEventListener("click", () => {
      const mode = button.getAttribute("data-map-mode");
      card.setAttribute("data-mode", mode);
      card.querySelector(".world-map").setAttribute("data-mode", mode);
      card.querySelectorAll("[data-map-mode]").forEach((other) => {
        const on = other === button;
        other.setAttribute("aria-pressed", on ? "true" : "false");
        other.classList.toggle("btn-pressed", on);
      });
    });
  });
  // Links inside an SVG are not ones HTMX boosts: send the drill-down through it like the other rows.
  card.querySelectorAll(".world-map a[data-country]").forEach((link) => {
    link.addEventListener("click", (event) => {
      const lib = htmx();
      if (!lib || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      lib.ajax("GET", link.getAttribute("href"), { source: link, target: "#dashboard", swap: "outerHTML" });
    });
  });
}

function chartHeight() {
  return window.matchMedia("(max-width: 640px)").matches ? 200 : 260;
}

function drawSeries(el) {
  const UPlot = uPlot();
  if (el.getAttribute("data-drawn") === "yes" || !UPlot) return;
  let data;
  try { data = JSON.parse(el.getAttribute("data-timeseries")); } catch (e) { return; }
  el.setAttribute("data-drawn", "yes");
  const accent = cssVar("--accent", "#4f46e5");
  const danger = cssVar("--danger", "#dc2626");
  const grid = cssVar("--grey-100", "#eef0f3");
  const ink = cssVar("--grey-500", "#6b7280");
  const few = data.t.length <= 45;
  const hourly = data.bucket === "hour";
  const zone = data.tz || "Etc/UTC";
  const previous = Array.isArray(data.previous) ? data.previous : null;
  const text = messages(el, "data-chart-messages", CHART_TEXT);
  const series = [
    { label: hourly ? text.hour : data.bucket === "week" ? text.week : text.day, value: hourly ? "{D} {MMM} {HH}:00" : "{D} {MMM} {YYYY}" },
    { label: text.views, stroke: accent, width: 2, fill: "rgba(79, 70, 229, 0.08)", points: { show: few, size: 5, fill: accent } },
    { label: text.fails, stroke: danger, width: 2, points: { show: few, size: 5, fill: danger } },
  ];
  const columns = [data.t, data.views, data.fails];
  if (previous) {
    series.push({ label: data.previous_label ? format(text.previous, { period: data.previous_label }) : text.previous_period, stroke: cssVar("--grey-400", "#9ca3af"), width: 1.5, dash: [5, 4], points: { show: false } });
    columns.push(previous);
  }
  const names = pageLang() === "en" ? null : dateNames();
  const ticks = names ? timeTicks(zone) : undefined;
  const opts = {
    width: Math.max(el.clientWidth, 200),
    height: chartHeight(),
    tzDate: (ts) => UPlot.tzDate(new Date(ts * 1000), zone),
    ...(names ? { fmtDate: (tpl) => UPlot.fmtDate(tpl, names) } : {}),
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    legend: { show: true, live: true },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.1))] } },
    series,
    axes: [
      { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "12px system-ui, sans-serif",
        ...(ticks ? { values: ticks } : {}) },
      { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: 48, font: "12px system-ui, sans-serif",
        values: (u, splits) => splits.map((v) => (v >= 10000 ? Math.round(v / 1000) + "k" : v.toLocaleString(pageLang()))) },
    ],
  };
  const chart = new UPlot(opts, columns, el);
  charts.push({ el, chart });
}

function init(root) {
  root.querySelectorAll("[data-timeseries]").forEach(drawSeries);
  root.querySelectorAll("[data-map]").forEach(initMap);
  nameRegions(root);
}

// Drops the charts whose element left the page (an HTMX swap replaced it); keeps the others.
function keepAttached() {
  charts = charts.filter((entry) => {
    if (document.body.contains(entry.el)) return true;
    entry.chart.destroy();
    return false;
  });
}

function resize() {
  keepAttached();
  charts.forEach((entry) => entry.chart.setSize({ width: Math.max(entry.el.clientWidth, 200), height: chartHeight() }));
}

let pending = null;
window.addEventListener("resize", () => {
  if (pending) cancelAnimationFrame(pending);
  pending = requestAnimationFrame(resize);
});

// htmx:load fires for the page and for every fragment it swaps in.
document.addEventListener("htmx:load", (event) => {
  keepAttached();
  init(event.target instanceof Element ? event.target : document.body);
});

// The live panel polls every 10 s; a page nobody looks at (a background tab) skips its turns.
document.addEventListener("htmx:beforeRequest", (event) => {
  const source = event.detail && event.detail.elt;
  if (document.hidden && source instanceof Element && source.hasAttribute("data-live-panel")) event.preventDefault();
});

// Back and forward restore a snapshot of the page: its chart is a dead copy of the canvas, so draw it again.
document.addEventListener("htmx:historyRestore", () => {
  charts.forEach((entry) => entry.chart.destroy());
  charts = [];
  document.querySelectorAll("[data-timeseries]").forEach((el) => {
    el.removeAttribute("data-drawn");
    el.querySelectorAll(".uplot").forEach((old) => old.remove());
  });
  document.querySelectorAll("[data-map]").forEach((card) => card.removeAttribute("data-map-ready"));
  init(document.body);
});

// A module runs once the document is parsed; htmx:load for the body may already have fired.
init(document.body);
