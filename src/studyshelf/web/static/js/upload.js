// Drag-and-drop and file-picker uploads with a progress bar per file (XMLHttpRequest upload events).
import { csrfToken, formatBytes, problemDetail, toast, uiMessages } from "./shared.js";
import { htmx } from "./vendor.js";

const CONCURRENCY = 3;

// The messages base.html translated for this page (data-ui-messages on <body>); English when it is missing.
const TEXT = uiMessages({
  upload_of: "Upload of %(name)s",
  waiting: "Waiting…",
  starting: "Starting…",
  progress: "%(percent)s% of %(size)s",
  uploaded: "Uploaded",
  upload_failed: "The upload failed. Check your connection and try again.",
  uploaded_one: "%(num)s file uploaded.",
  uploaded_other: "%(num)s files uploaded.",
});

// `%(name)s` placeholders of a translated message, filled here.
function format(template, values) {
  return String(template || "").replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

const zone = document.querySelector("[data-dropzone]");

function startUploads(zone) {
  const list = zone.querySelector("[data-upload-list]");
  const uploadUrl = zone.getAttribute("data-upload-url");
  const single = zone.hasAttribute("data-single");
  const queue = [];
  let running = 0;
  let finished = 0;
  let failed = 0;

  function addItem(file) {
    const item = document.createElement("li");
    item.className = "upload-item";
    const name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    const status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = TEXT.waiting;
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", format(TEXT.upload_of, { name: file.name }));
    item.append(name, status, bar);
    list.appendChild(item);
    return { item, status, bar };
  }

  function refresh() {
    if (zone.hasAttribute("data-reload")) { window.location.reload(); return; }
    const url = zone.getAttribute("data-refresh-url");
    if (url && htmx() && document.getElementById("listing")) {
      htmx().ajax("GET", url, { target: "#listing", swap: "outerHTML" });
    }
  }

  function settle() {
    running -= 1;
    next();
    if (running === 0 && queue.length === 0) {
      const ok = finished - failed;
      if (ok > 0) {
        toast(format(ok === 1 ? TEXT.uploaded_one : TEXT.uploaded_other, { num: ok }));
        refresh();
      }
      finished = 0;
      failed = 0;
      setTimeout(() => {
        list.querySelectorAll(".upload-item.is-done").forEach((el) => el.remove());
      }, 6000);
    }
  }

  function send(job) {
    running += 1;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", uploadUrl);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      const pct = Math.round((event.loaded / event.total) * 100);
      job.ui.bar.value = pct;
      job.ui.status.textContent = format(TEXT.progress, { percent: pct, size: formatBytes(event.total) });
    };
    xhr.onload = () => {
      finished += 1;
      if (xhr.status >= 200 && xhr.status < 300) {
        job.ui.bar.value = 100;
        job.ui.item.classList.add("is-done");
        job.ui.status.textContent = TEXT.uploaded;
      } else {
        failed += 1;
        job.ui.item.classList.add("is-error");
        job.ui.status.textContent = problemDetail(xhr);
      }
      settle();
    };
    xhr.onerror = () => {
      finished += 1;
      failed += 1;
      job.ui.item.classList.add("is-error");
      job.ui.status.textContent = TEXT.upload_failed;
      settle();
    };
    const form = new FormData();
    form.append("file", job.file, job.file.name);
    job.ui.status.textContent = TEXT.starting;
    xhr.send(form);
  }

  function next() {
    while (running < CONCURRENCY && queue.length > 0) send(queue.shift());
  }

  function enqueue(files) {
    let picked = Array.from(files || []);
    if (single) picked = picked.slice(0, 1);
    picked.forEach((file) => queue.push({ file, ui: addItem(file) }));
    next();
  }

  // The drop target is the zone; for a single-file zone (a new version) the whole page accepts a drop.
  const target = single ? document.body : zone;
  let depth = 0;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  target.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add("is-dragging");
  });
  target.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  target.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("is-dragging");
  });
  target.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragging");
    enqueue(event.dataTransfer.files);
  });

  document.querySelectorAll("[data-upload-input]").forEach((input) => {
    input.addEventListener("change", () => {
      enqueue(input.files);
      input.value = "";
    });
  });
}

if (zone) startUploads(zone);
