// Share-link viewer: media URLs are short-lived; fetch fresh ones before they expire and after an error,
// keeping the playback position, so a lecture plays to the end.
function keepMediaUrlsFresh(stage) {
  const media = stage.querySelector("[data-media]");
  const download = document.querySelector("[data-media-download]");
  let renewing = null;
  // A failed load is retried with fresh URLs a few times, slower each time (an expired URL or a blip heals;
  // a broken file must not make every open page ask for new URLs in a loop); then the page says it gave up.
  const RETRIES = 3;
  let retries = 0;
  let failure = null;
  function giveUp() {
    stage.dispatchEvent(new CustomEvent("studyshelf:media-failed", { detail: failure }));
  }

  async function renew() {
    if (renewing) return renewing;
    renewing = fetch(stage.dataset.renewUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: stage.dataset.token, file_id: stage.dataset.fileId }),
      credentials: "omit",
    })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .finally(() => { renewing = null; });
    return renewing;
  }

  function swap(element, url) {
    if (!element || element.tagName === "IMG") return;
    if (element.dataset.player && element.dataset.player !== "mp4") return;  // player.js keeps its own URLs
    const time = element.currentTime || 0;
    const playing = !element.paused;
    element.src = url;
    element.addEventListener("loadedmetadata", () => {
      element.currentTime = time;
      if (playing) element.play().catch(() => {});
    }, { once: true });
  }

  async function refresh(onError) {
    try {
      const fresh = await renew();
      stage.dispatchEvent(new CustomEvent("studyshelf:fresh-urls", { detail: fresh }));
      if (media && media.dataset.mp4Src && fresh.url) media.dataset.mp4Src = fresh.url;
      if (media && (onError || media.paused)) swap(media, fresh.url);
      else if (media) media.dataset.nextSrc = fresh.url;
      if (download && fresh.download_url) download.href = fresh.download_url;
      stage.dispatchEvent(new CustomEvent("studyshelf:media-urls", { detail: fresh }));  // caption tracks
    } catch (status) {
      stage.dataset.renewError = String(status);
      if (onError && failure) giveUp();  // no fresh URL to retry with (the link was revoked, or expired)
    }
  }

  if (media && media.tagName !== "IMG") {
    const retry = () => {
      failure = { code: media.error ? media.error.code : 2, src: media.currentSrc };
      if (retries >= RETRIES) { giveUp(); return; }
      retries += 1;
      window.setTimeout(() => refresh(true), 1000 * 2 ** (retries - 1));
    };
    media.addEventListener("error", retry);
    media.addEventListener("loadeddata", () => { retries = 0; failure = null; });
    if (media.error) retry();  // it failed before this deferred script ran (a quick error answer)
    media.addEventListener("pause", () => {
      if (media.dataset.nextSrc) { swap(media, media.dataset.nextSrc); delete media.dataset.nextSrc; }
    });
  }
  const every = Math.max(30, Number(stage.dataset.refreshAfter || 480)) * 1000;
  window.setInterval(() => refresh(false), every);
}

const stage = document.querySelector("[data-viewer]");
if (stage && stage.dataset.renewUrl) keepMediaUrlsFresh(stage);
