// Drag-and-drop and file-picker uploads with a progress bar per file (XMLHttpRequest upload events).
(function () {
  "use strict";

  var CONCURRENCY = 3;
  var zone = document.querySelector("[data-dropzone]");
  if (!zone) return;
  var list = zone.querySelector("[data-upload-list]");
  var uploadUrl = zone.getAttribute("data-upload-url");
  var single = zone.hasAttribute("data-single");
  var queue = [];
  var running = 0;
  var finished = 0;
  var failed = 0;

  function formatBytes(n) {
    var units = ["B", "KB", "MB", "GB", "TB"];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function addItem(file) {
    var item = document.createElement("li");
    item.className = "upload-item";
    var name = document.createElement("span");
    name.className = "upload-name";
    name.textContent = file.name;
    var status = document.createElement("span");
    status.className = "upload-status";
    status.textContent = "Waiting…";
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    item.append(name, status, bar);
    list.appendChild(item);
    return { item: item, status: status, bar: bar };
  }

  function refresh() {
    if (zone.hasAttribute("data-reload")) { window.location.reload(); return; }
    var url = zone.getAttribute("data-refresh-url");
    if (url && window.htmx && document.getElementById("listing")) {
      window.htmx.ajax("GET", url, { target: "#listing", swap: "outerHTML" });
    }
  }

  function settle() {
    running -= 1;
    next();
    if (running === 0 && queue.length === 0) {
      var ok = finished - failed;
      if (ok > 0) {
        window.StudyShelf.toast(ok === 1 ? "1 file uploaded." : ok + " files uploaded.");
        refresh();
      }
      finished = 0;
      failed = 0;
      setTimeout(function () {
        list.querySelectorAll(".upload-item.is-done").forEach(function (el) { el.remove(); });
      }, 6000);
    }
  }

  function send(job) {
    running += 1;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", uploadUrl);
    xhr.setRequestHeader("X-CSRF-Token", window.StudyShelf.csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (event) {
      if (!event.lengthComputable) return;
      var pct = Math.round((event.loaded / event.total) * 100);
      job.ui.bar.value = pct;
      job.ui.status.textContent = pct + "% of " + formatBytes(event.total);
    };
    xhr.onload = function () {
      finished += 1;
      if (xhr.status >= 200 && xhr.status < 300) {
        job.ui.bar.value = 100;
        job.ui.item.classList.add("is-done");
        job.ui.status.textContent = "Uploaded";
      } else {
        failed += 1;
        job.ui.item.classList.add("is-error");
        job.ui.status.textContent = window.StudyShelf.problemDetail(xhr);
      }
      settle();
    };
    xhr.onerror = function () {
      finished += 1;
      failed += 1;
      job.ui.item.classList.add("is-error");
      job.ui.status.textContent = "The upload failed. Check your connection and try again.";
      settle();
    };
    var form = new FormData();
    form.append("file", job.file, job.file.name);
    job.ui.status.textContent = "Starting…";
    xhr.send(form);
  }

  function next() {
    while (running < CONCURRENCY && queue.length > 0) send(queue.shift());
  }

  function enqueue(files) {
    var picked = Array.prototype.slice.call(files || []);
    if (single) picked = picked.slice(0, 1);
    picked.forEach(function (file) { queue.push({ file: file, ui: addItem(file) }); });
    next();
  }

  // The drop target is the zone; for a single-file zone (a new version) the whole page accepts a drop.
  var target = single ? document.body : zone;
  var depth = 0;
  function hasFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") !== -1;
  }
  target.addEventListener("dragenter", function (event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    zone.classList.add("is-dragging");
  });
  target.addEventListener("dragover", function (event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  target.addEventListener("dragleave", function () {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("is-dragging");
  });
  target.addEventListener("drop", function (event) {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    zone.classList.remove("is-dragging");
    enqueue(event.dataTransfer.files);
  });

  document.querySelectorAll("[data-upload-input]").forEach(function (input) {
    input.addEventListener("change", function () {
      enqueue(input.files);
      input.value = "";
    });
  });
})();
