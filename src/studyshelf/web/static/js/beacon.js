// Playback beacons: tell StudyShelf when the material loaded (and how long it took) or why it failed.
// Views are counted on the server; these add what only the browser knows. Bound to this page by its token.
//
// A page view has one outcome, so the fail rate (fails / (fails + loads)) is one of page views:
// - load_ok: the first frame, the audio, the image or the PDF's first page is there (load_ms from the start
//   of the page, retries included: what the learner waited);
// - load_fail: the material did not load, after the viewer's retries with fresh URLs (viewer.js), or nothing
//   at all arrived (not even a video's metadata) within the timeout.
// A video or audio also reports its playback (reportPlayback): watch time, furthest position, rendition, captions.
function reportLoad(stage) {
  const TIMEOUT_MS = Number(stage.dataset.loadTimeoutMs || 30000);
  let seq = 0;
  let settled = false;
  const timer = window.setTimeout(() => failed("timeout"), TIMEOUT_MS);

  // The captions language shown when the outcome is known (none: captions off, or the file has none).
  function captionsInUse() {
    const media = stage.querySelector("[data-media]");
    const tracks = media && media.textTracks ? Array.from(media.textTracks) : [];
    const shown = tracks.find((track) => track.mode === "showing" && track.language);
    return shown ? { captions: shown.language } : {};
  }
  function send(type, extra) {
    const body = Object.assign(
      { token: stage.dataset.beaconToken, type: type, seq: seq++, t: Date.now() }, captionsInUse(), extra);
    navigator.sendBeacon(stage.dataset.beaconUrl, new Blob([JSON.stringify(body)], { type: "application/json" }));
  }
  function settle() {
    if (settled) return false;
    settled = true;
    window.clearTimeout(timer);
    return true;
  }
  function ok() {
    if (settle()) send("load_ok", { load_ms: Math.round(performance.now()) });
  }
  // errorClass: the class, or a function that finds it out (asked only if this is the page's outcome)
  function failed(errorClass) {
    if (!settle()) return;
    Promise.resolve(typeof errorClass === "function" ? errorClass() : errorClass)
      .then((known) => send("load_fail", { error_class: known }));
  }

  // MediaError codes: 1 aborted, 2 network, 3 decode, 4 not supported. Chromium also says 4 when the URL
  // answered with an error, and an image says nothing at all, so ask the URL again (HEAD) for its status.
  async function classify(code, src) {
    if (code === 1) return "aborted";
    if (code === 3) return "decode";
    if (!src) return "network";
    try {
      const response = await fetch(src, { method: "HEAD", credentials: "omit", cache: "no-store" });
      if (response.status >= 500) return "http-5xx";
      if (response.status >= 400) return "http-4xx";
      if (code === 2) return "network";
      return code === 4 ? "unsupported" : "decode";
    } catch (_) {
      return "network";
    }
  }
  function pdfErrorClass(detail) {
    const status = Number(detail && detail.status);
    if (status >= 500) return "http-5xx";
    if (status >= 400) return "http-4xx";
    const name = detail && detail.name;
    return name === "ResponseException" || name === "MissingPDFException" ? "network" : "decode";
  }

  // playback: what this page view has played so far, sent when it pauses, ends or the page is left. Watch
  // time is media time actually played (timeupdate steps while playing; a seek is not played), so a paused
  // tab or a skipped hour adds nothing. Each report repeats the totals: the latest one counts, a lost one
  // loses nothing. The server refuses figures the page could not have played (analytics/beacons.py).
  function reportPlayback(element) {
    let watched = 0;
    let furthest = 0;
    let last = null;
    let reported = 0;
    let reportedAt = 0;
    element.addEventListener("timeupdate", () => {
      const now = element.currentTime;
      if (!element.paused && !element.seeking && last !== null) {
        const step = now - last;
        if (step > 0 && step < 2 * Math.max(1, element.playbackRate)) watched += step;
      }
      last = now;
      if (now > furthest && !element.seeking) furthest = now;
    });
    element.addEventListener("seeking", () => { last = null; });
    element.addEventListener("playing", () => { last = element.currentTime; });
    function rendition() {
      const shown = stage.dataset.rendition || "";
      return shown === "original" ? "mp4" : shown;
    }
    function report() {
      const watchMs = Math.round(watched * 1000);
      const positionMs = Math.round(furthest * 1000);
      if (watchMs <= reported && positionMs <= reportedAt) return;  // nothing played since the last report
      reported = watchMs;
      reportedAt = positionMs;
      const extra = { watch_ms: watchMs, position_ms: positionMs };
      if (Number.isFinite(element.duration) && element.duration > 0) {
        extra.duration_ms = Math.max(1, Math.round(element.duration * 1000));
        extra.position_ms = Math.min(extra.position_ms, extra.duration_ms);
      }
      const playing = rendition();
      if (/^[a-z0-9]{1,16}$/.test(playing)) extra.rendition = playing;
      send("playback", extra);
    }
    element.addEventListener("pause", report);
    element.addEventListener("ended", () => { furthest = element.duration || furthest; report(); });
    window.addEventListener("pagehide", report);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") report(); });
  }

  const media = stage.querySelector("[data-media]");
  const pdf = stage.querySelector("[data-media-pdf]");
  if (media && media.tagName === "IMG") {
    const imageFailed = () => failed(() => classify(0, media.currentSrc));
    if (media.complete && media.naturalWidth) ok();
    else if (media.complete) imageFailed();  // it failed before this deferred script ran
    media.addEventListener("load", ok, { once: true });
    media.addEventListener("error", imageFailed, { once: true });
  } else if (media) {
    if (media.tagName === "VIDEO" || media.tagName === "AUDIO") reportPlayback(media);
    // This script is deferred: the media may have loaded, or failed, before it ran.
    if (media.readyState >= 2) ok();
    media.addEventListener("loadeddata", ok, { once: true });  // the first frame (or audio) is ready
    media.addEventListener("loadedmetadata", () => {
      // The file answered and plays: with preload=metadata the browser may wait for play from here on,
      // which is not a timeout.
      window.clearTimeout(timer);
      if (media.readyState >= 2) ok();
    });
    if (stage.dataset.renewUrl) {
      stage.addEventListener("studyshelf:media-failed", (event) => {
        const failure = event.detail || {};
        failed(() => failure.errorClass || classify(failure.code, failure.src));
      });
    } else {
      const reportError = () => {
        const code = media.error ? media.error.code : 2;
        const src = media.currentSrc;
        failed(() => classify(code, src));
      };
      media.addEventListener("error", reportError, { once: true });
      if (media.error) reportError();
    }
  } else if (pdf) {
    pdf.addEventListener("studyshelf:first-page", ok, { once: true });
    pdf.addEventListener("studyshelf:load-failed", (event) => failed(pdfErrorClass(event.detail)), { once: true });
  } else {
    settle();  // nothing to load here (a download card)
  }
}

const stage = document.querySelector("[data-viewer]");
if (stage && stage.dataset.beaconToken && navigator.sendBeacon) reportLoad(stage);
