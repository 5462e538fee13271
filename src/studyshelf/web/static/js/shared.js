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

// The message of an RFC 9457 problem+json answer (or of a failure without one), for a toast or a status line.
export function problemDetail(xhr) {
  try {
    const body = JSON.parse(xhr.responseText);
    return body.detail || body.title || "Something went wrong.";
  } catch (e) {
    return xhr.status === 0 ? "The server could not be reached." : "Something went wrong (" + xhr.status + ").";
  }
}

export function formatBytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
