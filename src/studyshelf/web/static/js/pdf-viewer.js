// Render a PDF into canvases with the vendored pdf.js. The page's import map names both of its modules
// (web/assets.py), so they load from versioned URLs; it is imported only when a PDF is on the page.
const viewer = document.querySelector("[data-pdf-src]");
const MAX_PAGES = 100;

async function renderPdf(root) {
  const status = root.querySelector("[data-pdf-status]");
  const pages = root.querySelector("[data-pdf-pages]");
  const pdfjs = await import("pdfjs-dist");
  pdfjs.GlobalWorkerOptions.workerSrc = import.meta.resolve("pdfjs-dist/worker");
  const doc = await pdfjs.getDocument({ url: root.dataset.pdfSrc, withCredentials: true, isEvalSupported: false }).promise;
  const count = Math.min(doc.numPages, MAX_PAGES);
  status.textContent = doc.numPages === 1 ? "1 page" : `${doc.numPages} pages`;
  if (doc.numPages > MAX_PAGES) status.textContent += ` (showing the first ${MAX_PAGES}; download for the rest)`;
  const width = Math.max(280, pages.clientWidth - 32);
  const ratio = window.devicePixelRatio || 1;
  for (let number = 1; number <= count; number += 1) {
    const page = await doc.getPage(number);
    const base = page.getViewport({ scale: 1 });
    const viewport = page.getViewport({ scale: Math.min(2, width / base.width) * ratio });
    const canvas = document.createElement("canvas");
    canvas.width = Math.floor(viewport.width);
    canvas.height = Math.floor(viewport.height);
    canvas.style.width = `${Math.floor(viewport.width / ratio)}px`;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `Page ${number}`);
    pages.appendChild(canvas);
    await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport }).promise;
    if (number === 1) root.dispatchEvent(new CustomEvent("studyshelf:first-page"));  // for the beacon
  }
  root.dataset.rendered = String(count);
}

if (viewer) {
  renderPdf(viewer).catch((error) => {
    const status = viewer.querySelector("[data-pdf-status]");
    status.textContent = "This PDF could not be shown here. Use Download to open it.";
    viewer.dataset.error = String(error && error.message ? error.message : error);
    viewer.dispatchEvent(new CustomEvent("studyshelf:load-failed", { detail: { name: error && error.name, status: error && error.status } }));
  });
}
