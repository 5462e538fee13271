// Helpers the page modules share: the CSRF token, toasts, problem+json messages, sizes.

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

export function toast(message, kind) {
  const box = document.getElementById("toasts");
  if (!box || !message) return;
  const item = document.createElement("div");
  item.className = "toast" + (kind === "error" ? " toast-error" : "");
  item.setAttribute("role", kind === "error" ? "alert" : "status");
  const text = document.createElement("span");
  text.textContent = message;
  item.appendChild(text);
  box.appendChild(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

// The messages base.html translated for this page (data-ui-messages on <body>) over the English given, which
// stays where the attribute is missing.
export function uiMessages(english) {
  try {
    return { ...english, ...JSON.parse(document.body.dataset.uiMessages || "{}") };
  } catch (e) {
    return { ...english };
  }
}

// One such message, else the English given.
export function uiText(key, english) {
  return uiMessages({ [key]: english })[key];
}

// The message of an RFC 9457 problem+json answer (or of a failure without one), for a toast or a status line.
export function problemDetail(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    return body.detail || body.title || uiText("failed", "Something went wrong.");
  } catch (e) {
    if (xhr.status === 0) return uiText("offline", "The server could not be reached.");
    return uiText("failed_status", "Something went wrong (%(status)s).").replace("%(status)s", String(xhr.status));
  }
}

export function formatBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
