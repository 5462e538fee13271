// Playback beacons: tell StudyShelf when the material loaded (and how long it took) or why it failed.
// Views are counted on the server; these add what only the browser knows. Bound to this page by its token.
(function () {
  const stage = document.querySelector("[data-viewer]");
  if (!stage || !stage.dataset.beaconToken || !navigator.sendBeacon) return;
  const started = performance.now();
  let seq = 0;
  let loaded = false;
  let failures = 0;

  function send(type, extra) {
    const body = Object.assign({ token: stage.dataset.beaconToken, type: type, seq: seq++, t: Date.now() }, extra);
    navigator.sendBeacon(stage.dataset.beaconUrl, new Blob([JSON.stringify(body)], { type: "application/json" }));
  }
  function ok() {
    if (loaded) return;
    loaded = true;
    send("load_ok", { load_ms: Math.round(performance.now() - started) });
  }
  function failed(errorClass) {
    if (failures++ >= 3) return;  // the viewer retries with fresh URLs; report the first few only
    send("load_fail", { error_class: errorClass });
  }
  // MediaError codes: 1 aborted, 2 network, 3 decode, 4 not supported (or the URL failed).
  const MEDIA_ERRORS = { 1: "aborted", 2: "network", 3: "decode", 4: "unsupported" };

  const media = stage.querySelector("[data-media]");
  if (media && media.tagName === "IMG") {
    if (media.complete && media.naturalWidth) ok();
    media.addEventListener("load", ok, { once: true });
    media.addEventListener("error", () => failed("network"), { once: true });
  } else if (media) {
    media.addEventListener("loadeddata", ok, { once: true });  // the first frame (or audio) is ready
    media.addEventListener("loadedmetadata", () => { if (media.readyState >= 2) ok(); }, { once: true });
    media.addEventListener("error", () => failed(MEDIA_ERRORS[media.error ? media.error.code : 2] || "network"));
  }
  const pdf = stage.querySelector("[data-media-pdf]");
  if (pdf) {
    pdf.addEventListener("studyshelf:first-page", ok, { once: true });
    pdf.addEventListener("studyshelf:load-failed", (event) => {
      const name = event.detail && event.detail.name;
      failed(name === "ResponseException" || name === "MissingPDFException" ? "network" : "decode");
    }, { once: true });
  }
})();
