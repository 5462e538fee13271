// The analytics dashboard: draws the time series (uPlot) and names countries. No inline scripts (CSP).
(function () {
  "use strict";

  var charts = [];
  var regions = null;
  try {
    regions = new Intl.DisplayNames([document.documentElement.lang || "en"], { type: "region" });
  } catch (e) {
    regions = null;
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function regionName(code) {
    if (!regions || !/^[A-Z]{2}$/.test(code)) return code;
    try { return regions.of(code) || code; } catch (e) { return code; }
  }

  // Countries are stored as ISO codes; the browser knows their names in the page's language.
  function nameRegions(root) {
    root.querySelectorAll("[data-region]").forEach(function (el) {
      var code = el.getAttribute("data-region");
      var name = regionName(code);
      if (name !== code) { el.textContent = name; el.setAttribute("title", code); }
    });
    root.querySelectorAll("select[data-region-options] option").forEach(function (option) {
      if (option.value && option.textContent === option.value) option.textContent = regionName(option.value);
    });
  }

  function chartHeight() {
    return window.matchMedia("(max-width: 640px)").matches ? 200 : 260;
  }

  function drawSeries(el) {
    if (el.getAttribute("data-drawn") === "yes" || typeof window.uPlot !== "function") return;
    var data;
    try { data = JSON.parse(el.getAttribute("data-timeseries")); } catch (e) { return; }
    el.setAttribute("data-drawn", "yes");
    var accent = cssVar("--accent", "#4f46e5");
    var danger = cssVar("--danger", "#dc2626");
    var grid = cssVar("--grey-100", "#eef0f3");
    var ink = cssVar("--grey-500", "#6b7280");
    var few = data.t.length <= 45;
    var hourly = data.bucket === "hour";
    var opts = {
      width: Math.max(el.clientWidth, 200),
      height: chartHeight(),
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      cursor: { drag: { x: false, y: false }, points: { size: 7 } },
      legend: { show: true, live: true },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(4, Math.ceil(max * 1.1))]; } } },
      series: [
        { label: hourly ? "Hour (UTC)" : data.bucket === "week" ? "Week of" : "Day", value: hourly ? "{D} {MMM} {HH}:00" : "{D} {MMM} {YYYY}" },
        { label: "Views", stroke: accent, width: 2, fill: "rgba(79, 70, 229, 0.08)", points: { show: few, size: 5, fill: accent } },
        { label: "Failed loads", stroke: danger, width: 2, points: { show: few, size: 5, fill: danger } }
      ],
      axes: [
        { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: "12px system-ui, sans-serif" },
        { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: 48, font: "12px system-ui, sans-serif",
          values: function (u, splits) { return splits.map(function (v) { return v >= 10000 ? Math.round(v / 1000) + "k" : v.toLocaleString(); }); } }
      ]
    };
    var chart = new window.uPlot(opts, [data.t, data.views, data.fails], el);
    charts.push({ el: el, chart: chart });
  }

  function init(root) {
    root.querySelectorAll("[data-timeseries]").forEach(drawSeries);
    nameRegions(root);
  }

  function resize() {
    charts = charts.filter(function (entry) {
      if (!document.body.contains(entry.el)) { entry.chart.destroy(); return false; }
      entry.chart.setSize({ width: Math.max(entry.el.clientWidth, 200), height: chartHeight() });
      return true;
    });
  }

  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) cancelAnimationFrame(pending);
    pending = requestAnimationFrame(resize);
  });

  // htmx:load fires for the page and for every fragment it swaps in.
  document.addEventListener("htmx:load", function (event) {
    var target = event.target instanceof Element ? event.target : document.body;
    charts = charts.filter(function (entry) {
      if (document.body.contains(entry.el)) return true;
      entry.chart.destroy();
      return false;
    });
    init(target);
  });

  document.addEventListener("DOMContentLoaded", function () { init(document.body); });
})();
