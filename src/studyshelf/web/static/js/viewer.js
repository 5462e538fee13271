// Share-link viewer: media URLs are short-lived; fetch fresh ones before they expire and after an error,
// keeping the playback position, so a lecture plays to the end.
(function () {
  const stage = document.querySelector("[data-viewer]");
  if (!stage || !stage.dataset.renewUrl) return;
  const media = stage.querySelector("[data-media]");
  const download = document.querySelector("[data-media-download]");
  let renewing = null;

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
      if (media && (onError || media.paused)) swap(media, fresh.url);
      else if (media) media.dataset.nextSrc = fresh.url;
      if (download && fresh.download_url) download.href = fresh.download_url;
    } catch (status) {
      stage.dataset.renewError = String(status);
    }
  }

  if (media && media.tagName !== "IMG") {
    media.addEventListener("error", () => refresh(true));
    media.addEventListener("pause", () => {
      if (media.dataset.nextSrc) { swap(media, media.dataset.nextSrc); delete media.dataset.nextSrc; }
    });
  }
  const every = Math.max(30, Number(stage.dataset.refreshAfter || 480)) * 1000;
  window.setInterval(() => refresh(false), every);
})();
