"""What processing makes of one source file, written into a work directory (the caller stores it as blobs).

Video: HLS renditions up to the source's height (360p, 720p, 1080p; H.264/AAC; 4 s segments, a keyframe at
each segment start so every segment plays on its own), a master playlist, a poster and a seek-preview sprite
with its WebVTT index. Audio that is not web-safe: AAC in MP4. PDF: first-page thumbnail and page count.
Image: a thumbnail, and a web-safe JPEG of a large or unusual original.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studyshelf.media.tools import Probe, ToolFailed, Tools, probe, run

SEGMENT_SECONDS = 4
POSTER_HEIGHT = 720
THUMB_WIDTH = 320
SPRITE_COLUMNS = 10
SPRITE_TILE_WIDTH = 160
SPRITE_MAX_TILES = 100
WEB_IMAGE_MAX = 2560
WEB_IMAGE_BYTES = 4 * 1024**2
WEB_SAFE_AUDIO = frozenset({"audio/mpeg", "audio/mp4", "audio/aac", "audio/x-m4a", "audio/mp3"})
WEB_SAFE_IMAGE = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Rung:
    name: str
    height: int
    video_kbps: int
    audio_kbps: int


LADDER = (Rung("360p", 360, 800, 96), Rung("720p", 720, 2800, 128), Rung("1080p", 1080, 5000, 160))


@dataclass
class Produced:
    """Facts learnt about the source, and the renditions made (files are in the work directory)."""

    duration: float = 0.0
    width: int = 0
    height: int = 0
    page_count: int | None = None
    renditions: list[str] = field(default_factory=list)


Progress = Callable[[float], None]


@dataclass(frozen=True)
class Job:
    kind: str  # video | audio | pdf | image
    content_type: str
    source: Path
    out: Path
    timeout: float
    max_duration: float


def produce(tools: Tools, job: Job, progress: Progress) -> Produced:
    """Make the outputs of `job.kind` in `job.out`; ToolFailed with a reason when the source cannot be used."""
    if job.kind == "pdf":
        return _pdf(tools, job)
    if tools.ffmpeg is None or tools.ffprobe is None:
        raise ToolFailed("ffmpeg is not installed on this server; the original is served as uploaded")
    if job.kind == "image":
        return _image(tools.ffmpeg, tools.ffprobe, job)
    facts = probe(tools.ffprobe, job.source, timeout=min(job.timeout, 120))
    if not facts.has_video and not facts.has_audio:
        raise ToolFailed("the file has neither a video nor an audio stream (is it truncated or not a media file?)")
    if facts.duration <= 0:
        raise ToolFailed("the file's duration cannot be read (is it truncated?)")
    if facts.duration > job.max_duration:
        limit = job.max_duration / 3600
        raise ToolFailed(f"the file plays {facts.duration / 3600:.1f} h, longer than the {limit:g} h processed")
    if job.kind == "video" and facts.has_video:
        return _video(tools.ffmpeg, job, facts, progress)
    return _audio(tools.ffmpeg, job, facts, progress)


def ladder_for(height: int) -> list[Rung]:
    """The rungs a source of this height allows (never upscaled); a small source gets one at its own height."""
    rungs = [rung for rung in LADDER if rung.height <= height]
    if not rungs:
        even = max(2, height - height % 2)
        rungs = [Rung(f"{even}p", even, 500, 96)]
    return rungs


def _video(ffmpeg: str, job: Job, facts: Probe, progress: Progress) -> Produced:
    rungs = ladder_for(facts.height)
    out = job.out
    for rung in rungs:
        (out / rung.name).mkdir(parents=True, exist_ok=True)
    splits = "".join(f"[v{i}]" for i in range(len(rungs)))
    scales = ";".join(f"[v{i}]scale=-2:{rung.height}[v{i}o]" for i, rung in enumerate(rungs))
    command = [ffmpeg, "-nostdin", "-v", "error", "-progress", "pipe:1", "-nostats", "-i", str(job.source)]
    command += ["-filter_complex", f"[0:v:0]split={len(rungs)}{splits};{scales}"]
    gop = max(1, round(facts.frame_rate * SEGMENT_SECONDS))
    for i, rung in enumerate(rungs):
        command += ["-map", f"[v{i}o]"]
        if facts.has_audio:
            command += ["-map", "0:a:0"]
        command += [f"-b:v:{i}", f"{rung.video_kbps}k", f"-maxrate:v:{i}", f"{rung.video_kbps * 3 // 2}k"]
        command += [f"-bufsize:v:{i}", f"{rung.video_kbps * 2}k"]
        if facts.has_audio:
            command += [f"-b:a:{i}", f"{rung.audio_kbps}k"]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-pix_fmt", "yuv420p"]
    command += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
    command += ["-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_SECONDS})"]
    if facts.has_audio:
        command += ["-c:a", "aac", "-ac", "2", "-ar", "48000"]
    streams = " ".join(
        f"v:{i},a:{i},name:{rung.name}" if facts.has_audio else f"v:{i},name:{rung.name}"
        for i, rung in enumerate(rungs)
    )
    command += ["-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_playlist_type", "vod"]
    command += ["-hls_segment_filename", str(out / "%v" / "seg-%05d.ts"), "-master_pl_name", "master.m3u8"]
    command += ["-var_stream_map", streams, str(out / "%v" / "index.m3u8")]
    run(command, timeout=job.timeout, duration=facts.duration, on_progress=lambda f: progress(f * 0.9))
    _poster(ffmpeg, job, facts)
    _sprite(ffmpeg, job, facts)
    progress(1.0)
    return Produced(duration=facts.duration, width=facts.width, height=facts.height, renditions=[r.name for r in rungs])


def _poster(ffmpeg: str, job: Job, facts: Probe) -> None:
    at = f"{min(1.0, facts.duration / 10):.3f}"
    height = min(POSTER_HEIGHT, facts.height - facts.height % 2)
    for name, scale in (("poster.jpg", f"scale=-2:{height}"), ("thumb.jpg", f"scale={THUMB_WIDTH}:-2")):
        command = [ffmpeg, "-nostdin", "-v", "error", "-ss", at, "-i", str(job.source), "-frames:v", "1"]
        run([*command, "-vf", scale, "-q:v", "4", "-y", str(job.out / name)], timeout=min(job.timeout, 120))


def _sprite(ffmpeg: str, job: Job, facts: Probe) -> None:
    """Tiles of evenly spaced frames in one JPEG, and a WebVTT cue per tile (`sprite.jpg#xywh=…`)."""
    interval = max(2.0, facts.duration / SPRITE_MAX_TILES)
    tiles = max(1, min(SPRITE_MAX_TILES, math.ceil(facts.duration / interval)))
    rows = math.ceil(tiles / SPRITE_COLUMNS)
    columns = min(tiles, SPRITE_COLUMNS)
    width = SPRITE_TILE_WIDTH
    height = max(2, round(width * facts.height / max(1, facts.width) / 2) * 2)
    command = [ffmpeg, "-nostdin", "-v", "error", "-i", str(job.source), "-an"]
    command += ["-vf", f"fps=1/{interval:.3f},scale={width}:{height},tile={columns}x{rows}"]
    command += ["-frames:v", "1", "-q:v", "5", "-y", str(job.out / "sprite.jpg")]
    run(command, timeout=job.timeout)
    lines = ["WEBVTT", ""]
    for tile in range(tiles):
        start, end = tile * interval, min(facts.duration, (tile + 1) * interval)
        x, y = (tile % SPRITE_COLUMNS) * width, (tile // SPRITE_COLUMNS) * height
        lines += [f"{_stamp(start)} --> {_stamp(end)}", f"sprite.jpg#xywh={x},{y},{width},{height}", ""]
    (job.out / "thumbs.vtt").write_text("\n".join(lines), encoding="utf-8")


def _stamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def _audio(ffmpeg: str, job: Job, facts: Probe, progress: Progress) -> Produced:
    if not facts.has_audio:
        raise ToolFailed("the file has no audio stream")
    if job.content_type not in WEB_SAFE_AUDIO or job.kind == "video":
        command = [ffmpeg, "-nostdin", "-v", "error", "-progress", "pipe:1", "-nostats", "-i", str(job.source)]
        command += ["-vn", "-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-movflags", "+faststart"]
        run(
            [*command, "-y", str(job.out / "audio.m4a")],
            timeout=job.timeout,
            duration=facts.duration,
            on_progress=progress,
        )
    progress(1.0)
    return Produced(duration=facts.duration, renditions=["audio"] if (job.out / "audio.m4a").exists() else [])


def _image(ffmpeg: str, ffprobe: str, job: Job) -> Produced:
    facts = probe(ffprobe, job.source, timeout=min(job.timeout, 60))
    if not facts.has_video:
        raise ToolFailed("the image cannot be read (is it truncated or not an image?)")
    base = [ffmpeg, "-nostdin", "-v", "error", "-i", str(job.source), "-frames:v", "1"]
    thumb = f"scale='min({THUMB_WIDTH},iw)':-2"
    run([*base, "-vf", thumb, "-q:v", "4", "-y", str(job.out / "thumb.jpg")], timeout=min(job.timeout, 120))
    large = max(facts.width, facts.height) > WEB_IMAGE_MAX or job.source.stat().st_size > WEB_IMAGE_BYTES
    renditions = []
    if job.content_type not in WEB_SAFE_IMAGE or large:
        fit = f"scale='min({WEB_IMAGE_MAX},iw)':'min({WEB_IMAGE_MAX},ih)':force_original_aspect_ratio=decrease"
        run([*base, "-vf", fit, "-q:v", "3", "-y", str(job.out / "web.jpg")], timeout=min(job.timeout, 300))
        renditions.append("web")
    return Produced(width=facts.width, height=facts.height, renditions=renditions)


def _pdf(tools: Tools, job: Job) -> Produced:
    if tools.pdfinfo is None or tools.pdftoppm is None:
        raise ToolFailed("poppler-utils (pdfinfo, pdftoppm) are not installed on this server")
    info = job.out / "pdfinfo.txt"
    with info.open("wb") as answer:
        run([tools.pdfinfo, str(job.source)], timeout=min(job.timeout, 60), stdout=answer)
    pages = None
    for line in info.read_text("utf-8", "replace").splitlines():
        if line.startswith("Pages:"):
            pages = int(line.split(":", 1)[1].strip() or 0)
    info.unlink()
    if not pages:
        raise ToolFailed("the PDF has no pages that can be read")
    command = [tools.pdftoppm, "-jpeg", "-f", "1", "-l", "1", "-scale-to", str(THUMB_WIDTH * 2), "-singlefile"]
    run([*command, str(job.source), str(job.out / "thumb")], timeout=min(job.timeout, 120))
    return Produced(page_count=pages)
