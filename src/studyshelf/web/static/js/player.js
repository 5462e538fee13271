// Adaptive playback of a processed video: HLS through the vendored hls.js, natively where the browser has no
// MediaSource but plays HLS itself (iOS Safari), else the original MP4. Every rendition file sits under one
// signed prefix (/m/~/…/{sig}/); when the viewer renews its URLs, later requests go to the fresh prefix.
const SET_PREFIX = /\/m\/~\/(?:[^/]+\/){6}/;

function startPlayer(stage, video) {
  const fallback = video.dataset.mp4Src;
  let prefix = video.dataset.hlsSrc.match(SET_PREFIX)[0];
  let hls = null;

  function toCurrentPrefix(url) {
    return url.replace(SET_PREFIX, prefix);
  }

  function useMp4(errorClass) {
    if (hls) { hls.destroy(); hls = null; }
    const time = video.currentTime || 0;
    video.dataset.player = "mp4";
    stage.dataset.rendition = "original";
    if (errorClass) {
      stage.dataset.hlsError = errorClass;
      stage.dispatchEvent(new CustomEvent("studyshelf:media-failed", { detail: { code: 0, src: "", errorClass } }));
    }
    video.src = fallback;
    if (time) video.addEventListener("loadedmetadata", () => { video.currentTime = time; }, { once: true });
  }

  // hls.js error types: a playlist that would not load or parse, a segment, or the decoder (media errors).
  function errorClassOf(data) {
    const details = String(data.details || "");
    if (data.type === "mediaError") return "decode";
    if (details.startsWith("manifest") || details.startsWith("level")) return "manifest";
    return "segment";
  }

  // hls.js first where MediaSource exists (as its authors advise): it renews URLs mid-stream and reports
  // manifest, segment and decode errors apart; native HLS where it does not (iOS Safari), then the MP4.
  if (window.Hls && window.Hls.isSupported()) {
    video.dataset.player = "hls.js";
    hls = new window.Hls({
      maxBufferLength: 30,
      // Rewrite every request to the prefix signed last: URLs the manifest gave hls.js outlive their signature.
      xhrSetup: (xhr, url) => { xhr.open("GET", toCurrentPrefix(url), true); },
    });
    const showRendition = (_event, data) => {
      const level = hls.levels[data.level];
      stage.dataset.rendition = level && level.height ? `${level.height}p` : String(data.level);
    };
    hls.on(window.Hls.Events.LEVEL_SWITCHING, showRendition);  // chosen (before its first segment loads)
    hls.on(window.Hls.Events.LEVEL_SWITCHED, showRendition);
    let recovered = false;
    hls.on(window.Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === "mediaError" && !recovered) { recovered = true; hls.recoverMediaError(); return; }
      useMp4(errorClassOf(data));
    });
    hls.loadSource(video.dataset.hlsSrc);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.dataset.player = "native-hls";
    stage.dataset.rendition = "auto";
    video.src = video.dataset.hlsSrc;
    video.addEventListener("error", () => { if (video.dataset.player === "native-hls") useMp4("decode"); }, { once: true });
  } else {
    useMp4(null);
  }

  stage.addEventListener("studyshelf:fresh-urls", (event) => {
    const fresh = event.detail || {};
    if (fresh.hls_url) prefix = fresh.hls_url.match(SET_PREFIX)[0];
    if (video.dataset.player === "native-hls" && fresh.hls_url && video.paused) {
      const time = video.currentTime || 0;
      video.src = fresh.hls_url;
      video.addEventListener("loadedmetadata", () => { video.currentTime = time; }, { once: true });
    }
  });
}

const stage = document.querySelector("[data-viewer]");
const video = stage && stage.querySelector("video[data-hls-src]");
if (video) startPlayer(stage, video);
