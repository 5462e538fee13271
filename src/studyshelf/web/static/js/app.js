// StudyShelf page behaviour: dialogs, menus, toasts, copy buttons, confirmations. No inline scripts (CSP).
import { problemDetail, toast, uiMessages } from "./shared.js";
import { htmx } from "./vendor.js";

// The messages base.html translated for this page (data-ui-messages on <body>); English when it is missing.
const TEXT = uiMessages({
  loading: "Loading…",
  copied: "Copied to the clipboard.",
  unreachable: "The server could not be reached. Check your connection and try again.",
});

function closeMenus(except) {
  document.querySelectorAll("details.menu[open]").forEach((menu) => {
    if (menu !== except) menu.removeAttribute("open");
  });
}

function openDialog(button) {
  const dialog = document.getElementById(button.getAttribute("data-open-dialog"));
  if (!dialog) return;
  const form = dialog.querySelector("form");
  if (form && !button.hasAttribute("data-name")) form.reset();
  const values = { kind: button.getAttribute("data-kind"), "item-id": button.getAttribute("data-item-id"), name: button.getAttribute("data-name") };
  Object.keys(values).forEach((key) => {
    if (values[key] === null) return;
    dialog.querySelectorAll('[data-field="' + key + '"]').forEach((input) => { input.value = values[key]; });
    dialog.querySelectorAll('[data-field-text="' + key + '"]').forEach((el) => { el.textContent = values[key]; });
  });
  closeMenus(null);
  const load = button.getAttribute("data-load");
  const content = dialog.querySelector("[data-dialog-content]");
  if (load && content && htmx()) {
    const loading = document.createElement("p");
    loading.className = "muted dialog-loading";
    loading.textContent = TEXT.loading;
    content.replaceChildren(loading);
    htmx().ajax("GET", load, { target: content, swap: "innerHTML" });
  }
  dialog.showModal();
  const first = dialog.querySelector("input:not([type=hidden]), select");
  if (first) {
    first.focus();
    if (first.select && first.getAttribute("data-field") === "name") {
      const dot = first.value.lastIndexOf(".");
      first.setSelectionRange(0, dot > 0 && values.kind === "file" ? dot : first.value.length);
    }
  }
}

function confirmThen(message, onConfirm) {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog) { if (window.confirm(message)) onConfirm(); return; }
  dialog.querySelector(".confirm-message").textContent = message;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok") onConfirm();
  }, { once: true });
  dialog.showModal();
}

function copyField(button) {
  const field = document.querySelector(button.getAttribute("data-copy"));
  if (!field) return;
  field.select();
  const done = () => toast(TEXT.copied);
  if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, () => { document.execCommand("copy"); done(); });
  else { document.execCommand("copy"); done(); }
}

document.addEventListener("click", (event) => {
  const target = event.target instanceof Element ? event.target : null;
  if (!target) return;
  const opener = target.closest("[data-open-dialog]");
  if (opener) { event.preventDefault(); openDialog(opener); return; }
  const closer = target.closest("[data-close-dialog]");
  if (closer) { const dialog = closer.closest("dialog"); if (dialog) dialog.close(); return; }
  const copy = target.closest("[data-copy]");
  if (copy) { copyField(copy); return; }
  closeMenus(target.closest("details.menu"));
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.querySelector("details.menu[open]");
  if (open) {
    open.removeAttribute("open");
    const summary = open.querySelector("summary");
    if (summary) summary.focus();
  }
});

document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) el.form.submit();
});

document.addEventListener("focusin", (event) => {
  const el = event.target;
  if ((el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) && el.hasAttribute("data-select-on-focus")) el.select();
});

// Forms with data-confirm ask first, in a <dialog>; HTMX forms are then sent by htmx, others natively.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm") || form.dataset.confirmed === "yes") return;
  event.preventDefault();
  event.stopImmediatePropagation();
  confirmThen(form.getAttribute("data-confirm"), () => {
    form.dataset.confirmed = "yes";
    form.requestSubmit();
    delete form.dataset.confirmed;
  });
}, true);

document.addEventListener("htmx:afterRequest", (event) => {
  const elt = event.detail.elt;
  if (event.detail.successful && elt instanceof Element) {
    const dialog = elt.closest("dialog");
    if (dialog && dialog.open && !dialog.hasAttribute("data-keep-open")) dialog.close();
  }
});

document.addEventListener("htmx:responseError", (event) => {
  toast(problemDetail(event.detail.xhr), "error");
});

document.addEventListener("htmx:sendError", () => {
  toast(TEXT.unreachable, "error");
});

document.body.addEventListener("toast", (event) => {
  toast(event.detail && event.detail.message);
});
