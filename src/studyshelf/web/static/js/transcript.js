// The interactive transcript beside a captioned video or audio: every cue of the captions language in use,
// the one playing highlighted, a line selected to play from there. Follows the player's captions menu (and
// moves it, when captions are on); keyboard: Up/Down/Home/End move between lines, Enter or Space plays one.
const stage = document.querySelector("[data-viewer]");
const panel = stage && stage.querySelector("[data-transcript]");
const media = stage && stage.querySelector("[data-media]");

function clock(seconds) {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
}

function captionTracks() {
  const elements = Array.from(media.querySelectorAll("track"));
  return elements.map((element) => ({ element, track: element.track }));
}

function startTranscript() {
  const list = panel.querySelector("[data-transcript-cues]");
  const picker = panel.querySelector("[data-transcript-language]");
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const tracks = captionTracks();
  let current = null;
  let lines = [];
  let active = null;

  function showingEntry() {
    return tracks.find((entry) => entry.track.mode === "showing") || null;
  }
  function entryOf(language) {
    return tracks.find((entry) => entry.element.srclang === language) || null;
  }

  function render() {
    list.replaceChildren();
    lines = [];
    active = null;
    const cues = current && current.track.cues ? Array.from(current.track.cues) : [];
    cues.forEach((cue, index) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "transcript-cue";
      button.tabIndex = index === 0 ? 0 : -1;
      button.dataset.start = String(cue.startTime);
      const time = document.createElement("span");
      time.className = "transcript-time";
      time.textContent = clock(cue.startTime);
      const text = document.createElement("span");
      text.className = "transcript-text";
      text.textContent = cue.getCueAsHTML().textContent;  // the cue's text without its markup
      button.append(time, " ", text);  // its name: "0:05 In metaphase, …", as it reads
      item.append(button);
      list.append(item);
      lines.push({ cue, button });
    });
    panel.hidden = false;
    highlight();
  }

  function scrollIntoList(button) {
    const top = button.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top + button.offsetHeight > list.scrollTop + list.clientHeight) {
      const target = Math.max(0, top - list.clientHeight / 3);
      list.scrollTo({ top: target, behavior: reducedMotion.matches ? "auto" : "smooth" });
    }
  }

  function highlight() {
    const time = media.currentTime;
    const found = lines.find((line) => line.cue.startTime <= time && time < line.cue.endTime) || null;
    if (found === active) return;
    if (active) {
      active.button.classList.remove("is-active");
      active.button.removeAttribute("aria-current");
    }
    active = found;
    if (!active) return;
    active.button.classList.add("is-active");
    active.button.setAttribute("aria-current", "true");
    if (!list.contains(document.activeElement)) {
      lines.forEach((line) => { line.button.tabIndex = line === active ? 0 : -1; });
      scrollIntoList(active.button);
    }
  }

  function use(entry) {
    if (!entry) return;
    current = entry;
    if (entry.track.mode === "disabled") entry.track.mode = "hidden";  // load its cues without showing them
    if (picker) picker.value = entry.element.srclang;
    panel.dataset.language = entry.element.srclang;
    if (entry.element.readyState === 2 && entry.track.cues) render();
    else entry.element.addEventListener("load", () => { if (current === entry) render(); }, { once: true });
  }

  tracks.forEach((entry) => entry.track.addEventListener("cuechange", () => { if (entry === current) highlight(); }));
  media.addEventListener("timeupdate", highlight);
  media.addEventListener("seeked", highlight);

  // The player's own captions menu: the transcript follows the language shown.
  media.textTracks.addEventListener("change", () => {
    const shown = showingEntry();
    if (shown && shown !== current) use(shown);
  });
  if (picker) {
    picker.addEventListener("change", () => {
      const chosen = entryOf(picker.value);
      const shown = showingEntry();
      if (shown && chosen && shown !== chosen) {
        shown.track.mode = "disabled";
        chosen.track.mode = "showing";  // captions are on: show them in the language chosen
      }
      use(chosen);
    });
  }

  list.addEventListener("click", (event) => {
    const button = event.target.closest(".transcript-cue");
    if (!button) return;
    media.currentTime = Number(button.dataset.start);
    highlight();
  });
  list.addEventListener("keydown", (event) => {
    const index = lines.findIndex((line) => line.button === document.activeElement);
    if (index < 0) return;
    const moves = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: lines.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const next = lines[Math.max(0, Math.min(lines.length - 1, moves[event.key]))];
    lines.forEach((line) => { line.button.tabIndex = line === next ? 0 : -1; });
    next.button.focus();
  });

  // Fresh signed URLs (viewer.js renews them with the media's): a track that failed to load, or has not
  // loaded yet, takes its new URL; a loaded one keeps its cues.
  stage.addEventListener("studyshelf:media-urls", (event) => {
    const fresh = (event.detail && event.detail.captions) || [];
    fresh.forEach((caption) => {
      const entry = tracks.find((t) => t.element.dataset.captionId === caption.id);
      if (entry && entry.element.readyState !== 2) entry.element.src = caption.url;
    });
  });

  const first = showingEntry() || tracks.find((entry) => entry.element.default) || tracks[0];
  // What the browser's own selection does for a default track, done now so "hidden" cannot pre-empt it.
  if (first && first.element.default && first.track.mode === "disabled") first.track.mode = "showing";
  use(first);
}

if (panel && media && media.textTracks) startTranscript();
