// Step 2 of the LTI login: keep the browser binding (Platform Storage, sessionStorage; the server set a
// cookie too), then go to the platform's auth endpoint. If nothing can be kept, offer a new window.
(async function () {
  const box = document.querySelector("[data-lti-login]");
  if (!box) return;
  const d = box.dataset;
  let kept = navigator.cookieEnabled;
  try { sessionStorage.setItem(d.key, d.binding); kept = true; } catch (e) { /* storage blocked */ }
  if (d.storageTarget && window.StudyShelfLtiStorage) {
    if (await window.StudyShelfLtiStorage.put(d.storageTarget, d.storageOrigin, d.key, d.binding)) kept = true;
  }
  if (!kept) {
    document.querySelector("[data-lti-blocked]").hidden = false;
    return;
  }
  window.location.replace(d.authUrl);
})();
