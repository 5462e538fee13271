// Render a PDF into canvases with the vendored pdf.js. The page's import map names both of its modules
// (web/assets.py), so they load from versioned URLs; it is imported only when a PDF is on the page.
// Each page carries pdf.js's text layer (selectable, read by screen readers, found by Ctrl+F); the toolbar's
// buttons and page field, and PageUp/PageDown/Home/End in the page area, move between pages by keyboard.
const viewer = document.querySelector("[data-pdf-src]");
const MAX_PAGES = 100;

function messages(root) {
  try {
    return JSON.parse(root.dataset.pdfMessages || "{}");
  } catch {
    return {};
  }
}

// The server translated the templates (web/i18n.py); `%(name)s` is filled here.
function format(template, values) {
  return String(template || "").replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

function controls(root, text) {
  const pages = root.querySelector("[data-pdf-pages]");
  const prev = root.querySelector("[data-pdf-prev]");
  const next = root.querySelector("[data-pdf-next]");
  const input = root.querySelector("[data-pdf-page-input]");
  const status = root.querySelector("[data-pdf-status]");
  let count = 0;
  let current = 1;

  function show(number, focus) {
    if (!count) return;
    current = Math.min(Math.max(1, number), count);
    const page = pages.querySelector(`[data-page="${current}"]`);
    if (page) {
      const reduce = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      page.scrollIntoView({ block: "start", behavior: reduce ? "auto" : "smooth" });
      if (focus) page.focus({ preventScroll: true });
    }
    update();
  }

  function update() {
    prev.disabled = current <= 1;
    next.disabled = current >= count;
    input.value = String(current);
    status.textContent = format(text.page_of, { page: current, count });
  }

  prev.addEventListener("click", () => show(current - 1, false));
  next.addEventListener("click", () => show(current + 1, false));
  input.addEventListener("change", () => show(Number(input.value) || 1, true));
  pages.addEventListener("keydown", (event) => {
    const moves = { PageDown: current + 1, PageUp: current - 1, Home: 1, End: count };
    if (!(event.key in moves) || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    show(moves[event.key], true);
  });
  // The page most in view is the current one, so the toolbar follows scrolling too.
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        current = Number(entry.target.dataset.page);
        update();
      }
    }
  }, { root: pages.scrollHeight > pages.clientHeight ? pages : null, threshold: 0.5 });

  return {
    ready(total) {
      count = total;
      input.max = String(total);
      input.disabled = false;
      update();
    },
    added(page) { seen.observe(page); },
  };
}

async function renderPage(pdfjs, doc, number, pages, width, text) {
  const page = await doc.getPage(number);
  const base = page.getViewport({ scale: 1 });
  const scale = Math.min(2, width / base.width);
  const ratio = window.devicePixelRatio || 1;
  const cssViewport = page.getViewport({ scale });
  const viewport = page.getViewport({ scale: scale * ratio });
  const holder = document.createElement("div");
  holder.className = "pdf-page";
  holder.dataset.page = String(number);
  holder.tabIndex = -1;
  holder.setAttribute("role", "group");
  holder.setAttribute("aria-label", format(text.page, { page: number }));
  holder.style.setProperty("--scale-factor", String(scale));
  holder.style.width = `${Math.floor(cssViewport.width)}px`;
  holder.style.height = `${Math.floor(cssViewport.height)}px`;
  const canvas = document.createElement("canvas");
  canvas.width = Math.floor(viewport.width);
  canvas.height = Math.floor(viewport.height);
  canvas.style.width = `${Math.floor(cssViewport.width)}px`;
  canvas.setAttribute("aria-hidden", "true");  // the text layer below carries the page's words
  const layer = document.createElement("div");
  layer.className = "textLayer";
  holder.append(canvas, layer);
  pages.appendChild(holder);
  await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
  const textLayer = new pdfjs.TextLayer({ textContentSource: page.streamTextContent(), container: layer, viewport: cssViewport });
  await textLayer.render();
  return holder;
}

async function renderPdf(root) {
  const text = messages(root);
  const status = root.querySelector("[data-pdf-status]");
  const pages = root.querySelector("[data-pdf-pages]");
  const nav = controls(root, text);
  const pdfjs = await import("pdfjs-dist");
  pdfjs.GlobalWorkerOptions.workerSrc = import.meta.resolve("pdfjs-dist/worker");
  const doc = await pdfjs.getDocument({ url: root.dataset.pdfSrc, withCredentials: true, isEvalSupported: false }).promise;
  const count = Math.min(doc.numPages, MAX_PAGES);
  nav.ready(count);
  if (doc.numPages > MAX_PAGES) {
    const note = document.createElement("p");
    note.className = "pdf-note muted";
    note.textContent = format(text.limited, { shown: MAX_PAGES });
    status.after(note);
  }
  const width = Math.max(280, pages.clientWidth - 32);
  for (let number = 1; number <= count; number += 1) {
    const page = await renderPage(pdfjs, doc, number, pages, width, text);
    nav.added(page);
    if (number === 1) root.dispatchEvent(new CustomEvent("studyshelf:first-page"));  // for the beacon
  }
  root.dataset.rendered = String(count);
}

if (viewer) {
  renderPdf(viewer).catch((error) => {
    const status = viewer.querySelector("[data-pdf-status]");
    status.textContent = format(messages(viewer).failed, {});
    viewer.dataset.error = String(error && error.message ? error.message : error);
    viewer.dispatchEvent(new CustomEvent("studyshelf:load-failed", { detail: { name: error && error.name, status: error && error.status } }));
  });
}
