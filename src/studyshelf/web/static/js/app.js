// StudyShelf page behaviour: dialogs, menus, toasts, copy buttons, confirmations. No inline scripts (CSP).
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function toast(message, kind) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var item = document.createElement("div");
    item.className = "toast" + (kind === "error" ? " toast-error" : "");
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    var text = document.createElement("span");
    text.textContent = message;
    item.appendChild(text);
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, kind === "error" ? 8000 : 4000);
  }

  function problemDetail(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      return body.detail || body.title || "Something went wrong.";
    } catch (e) {
      return xhr.status === 0 ? "The server could not be reached." : "Something went wrong (" + xhr.status + ").";
    }
  }

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (menu !== except) menu.removeAttribute("open");
    });
  }

  function openDialog(button) {
    var dialog = document.getElementById(button.getAttribute("data-open-dialog"));
    if (!dialog) return;
    var form = dialog.querySelector("form");
    if (form && !button.hasAttribute("data-name")) form.reset();
    var values = { kind: button.getAttribute("data-kind"), "item-id": button.getAttribute("data-item-id"), name: button.getAttribute("data-name") };
    Object.keys(values).forEach(function (key) {
      if (values[key] === null) return;
      dialog.querySelectorAll('[data-field="' + key + '"]').forEach(function (input) { input.value = values[key]; });
      dialog.querySelectorAll('[data-field-text="' + key + '"]').forEach(function (el) { el.textContent = values[key]; });
    });
    closeMenus(null);
    var load = button.getAttribute("data-load");
    var content = dialog.querySelector("[data-dialog-content]");
    if (load && content && window.htmx) {
      content.innerHTML = '<p class="muted dialog-loading">Loading…</p>';
      window.htmx.ajax("GET", load, { target: content, swap: "innerHTML" });
    }
    dialog.showModal();
    var first = dialog.querySelector("input:not([type=hidden]), select");
    if (first) {
      first.focus();
      if (first.select && first.getAttribute("data-field") === "name") {
        var dot = first.value.lastIndexOf(".");
        first.setSelectionRange(0, dot > 0 && values.kind === "file" ? dot : first.value.length);
      }
    }
  }

  function confirmThen(message, onConfirm) {
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog) { if (window.confirm(message)) onConfirm(); return; }
    dialog.querySelector(".confirm-message").textContent = message;
    dialog.returnValue = "";
    dialog.addEventListener("close", function handler() {
      dialog.removeEventListener("close", handler);
      if (dialog.returnValue === "ok") onConfirm();
    });
    dialog.showModal();
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var opener = target.closest("[data-open-dialog]");
    if (opener) { event.preventDefault(); openDialog(opener); return; }
    var closer = target.closest("[data-close-dialog]");
    if (closer) { var dialog = closer.closest("dialog"); if (dialog) dialog.close(); return; }
    var copy = target.closest("[data-copy]");
    if (copy) {
      var field = document.querySelector(copy.getAttribute("data-copy"));
      if (field) {
        field.select();
        var done = function () { toast("Copied to the clipboard."); };
        if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
        else { document.execCommand("copy"); done(); }
      }
      return;
    }
    var menu = target.closest("details.menu");
    closeMenus(menu);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = document.querySelector("details.menu[open]");
    if (open) {
      open.removeAttribute("open");
      var summary = open.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) el.form.submit();
  });

  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if ((el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) && el.hasAttribute("data-select-on-focus")) el.select();
  });

  // Forms with data-confirm ask first, in a <dialog>; HTMX forms are then sent by htmx, others natively.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm") || form.dataset.confirmed === "yes") return;
    event.preventDefault();
    event.stopImmediatePropagation();
    confirmThen(form.getAttribute("data-confirm"), function () {
      form.dataset.confirmed = "yes";
      form.requestSubmit();
      delete form.dataset.confirmed;
    });
  }, true);

  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.successful && elt instanceof Element) {
      var dialog = elt.closest("dialog");
      if (dialog && dialog.open && !dialog.hasAttribute("data-keep-open")) dialog.close();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    toast(problemDetail(event.detail.xhr), "error");
  });

  document.addEventListener("htmx:sendError", function () {
    toast("The server could not be reached. Check your connection and try again.", "error");
  });

  document.body.addEventListener("toast", function (event) {
    toast(event.detail && event.detail.message);
  });

  window.StudyShelf = { toast: toast, csrfToken: csrfToken, problemDetail: problemDetail };
})();
