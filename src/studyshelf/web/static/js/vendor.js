// The one place that reads the vendored classic scripts' globals (htmx, uPlot, Swagger UI): they load as
// plain deferred <script>s before our modules run. Read at call time, so a page without one gets null.

export function htmx() {
  return window.htmx || null;
}

export function uPlot() {
  return typeof window.uPlot === "function" ? window.uPlot : null;
}

export function swaggerUIBundle() {
  return window.SwaggerUIBundle || null;
}
