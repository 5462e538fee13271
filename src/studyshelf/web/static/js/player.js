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

  const previews = stage.querySelector("[data-seek-previews]");
  if (previews) startSeekPreviews(previews, video, toCurrentPrefix);

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

// "00:01:04.000" or "01:04.000" in seconds.
function seconds(stamp) {
  return stamp.trim().split(":").reduce((total, part) => total * 60 + parseFloat(part), 0);
}

// The cues of a thumbnail index (WebVTT whose cue text is `sprite.jpg#xywh=x,y,w,h`), in time order.
export function parseThumbnails(text) {
  const cues = [];
  for (const block of text.replace(/\r/g, "").split(/\n{2,}/)) {
    const lines = block.split("\n").filter(Boolean);
    const timing = lines.findIndex((line) => line.includes("-->"));
    if (timing < 0 || !lines[timing + 1]) continue;
    const [from, to] = lines[timing].split("-->");
    const [file, fragment] = lines[timing + 1].trim().split("#xywh=");
    const box = (fragment || "").split(",").map(Number);
    if (box.length !== 4 || box.some(Number.isNaN)) continue;
    cues.push({ start: seconds(from), end: seconds(to.trim().split(/\s/)[0]), file, x: box[0], y: box[1], w: box[2], h: box[3] });
  }
  return cues;
}

function clock(total) {
  const whole = Math.max(0, Math.floor(total));
  const h = Math.floor(whole / 3600), m = Math.floor(whole / 60) % 60, s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

// The scrub bar under the player: hovering or moving it with the keyboard shows the sprite tile of that time;
// releasing the pointer, or Enter, jumps there. The native controls stay; this only adds the previews.
function startSeekPreviews(root, video, toCurrentPrefix) {
  const bar = root.querySelector("[data-seek-bar]");
  const tile = root.querySelector("[data-seek-tile]");
  const label = root.querySelector("[data-seek-time]");
  const indexUrl = root.dataset.seekPreviews;
  let cues = [];
  let scrubbing = false;

  function cueAt(time) {
    return cues.find((cue) => time >= cue.start && time < cue.end) || (time >= 0 && cues[cues.length - 1]) || null;
  }

  function show(time) {
    const cue = cueAt(time);
    if (!cue) { tile.hidden = true; return; }
    const sprite = toCurrentPrefix(new URL(cue.file, new URL(indexUrl, location.href)).href);
    tile.style.width = `${cue.w}px`;
    tile.style.height = `${cue.h}px`;
    tile.style.backgroundImage = `url("${sprite}")`;
    tile.style.backgroundPosition = `${-cue.x}px ${-cue.y}px`;
    const share = video.duration ? time / video.duration : 0;
    const left = Math.min(Math.max(share * bar.clientWidth - cue.w / 2, 0), Math.max(0, bar.clientWidth - cue.w - 4));
    tile.style.left = `${left}px`;
    tile.dataset.time = time.toFixed(3);
    label.textContent = clock(time);
    tile.hidden = false;
  }

  function timeAtPointer(event) {
    const box = bar.getBoundingClientRect();
    const share = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
    return share * (video.duration || 0);
  }

  function describe() {
    bar.setAttribute("aria-valuetext", `${clock(Number(bar.value))} / ${clock(video.duration || 0)}`);
  }

  function seek() {
    video.currentTime = Number(bar.value);
    describe();
  }

  function ready() {
    if (!cues.length || !Number.isFinite(video.duration) || video.duration <= 0) return;
    bar.max = String(Math.floor(video.duration));
    bar.value = String(Math.floor(video.currentTime || 0));
    describe();
    root.hidden = false;
  }

  fetch(toCurrentPrefix(new URL(indexUrl, location.href).href), { credentials: "omit" })
    .then((response) => (response.ok ? response.text() : ""))
    .then((text) => { cues = parseThumbnails(text); ready(); })
    .catch(() => {});  // no index, no previews: the native controls still seek

  video.addEventListener("loadedmetadata", ready);
  video.addEventListener("durationchange", ready);
  video.addEventListener("timeupdate", () => {
    if (scrubbing || document.activeElement === bar) return;
    bar.value = String(Math.floor(video.currentTime));
    describe();
  });
  bar.addEventListener("pointermove", (event) => show(timeAtPointer(event)));
  bar.addEventListener("pointerleave", () => { if (document.activeElement !== bar || !scrubbing) tile.hidden = true; });
  bar.addEventListener("pointerdown", () => { scrubbing = true; });
  bar.addEventListener("input", () => { show(Number(bar.value)); describe(); });
  bar.addEventListener("change", () => { scrubbing = false; seek(); });
  bar.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); seek(); }
    if (event.key === "Escape") tile.hidden = true;
  });
  bar.addEventListener("focus", () => show(Number(bar.value)));
  bar.addEventListener("blur", () => { tile.hidden = true; });
}

const stage = document.querySelector("[data-viewer]");
const video = stage && stage.querySelector("video[data-hls-src]");
if (video) startPlayer(stage, video);
