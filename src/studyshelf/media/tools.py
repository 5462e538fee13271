"""The external programs processing runs (Debian's ffmpeg, ffprobe, pdftoppm, pdfinfo), with a deadline each.

Output goes to files (never a pipe we would have to hold in memory); stderr is kept in a temporary file whose
tail explains a failure. `-progress pipe:1` gives ffmpeg's position as `out_time_us=` lines, which become a
percentage of the input's duration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from studyshelf.settings import Settings

ERROR_TAIL = 600  # characters of a tool's stderr kept in a failed job's reason


class ToolFailed(Exception):
    """The input could not be processed (corrupt, truncated, no usable stream): retrying will not help."""


class ToolTimedOut(ToolFailed):
    """The tool ran past its deadline and was stopped."""


@dataclass(frozen=True)
class Tools:
    ffmpeg: str | None
    ffprobe: str | None
    pdftoppm: str | None
    pdfinfo: str | None

    @classmethod
    def find(cls, settings: Settings) -> Tools:
        """The programs as configured (ffprobe beside ffmpeg), each None when it is not installed."""
        ffmpeg = shutil.which(settings.ffmpeg_path)
        ffprobe = None
        if ffmpeg is not None:
            beside = Path(ffmpeg).with_name("ffprobe")
            ffprobe = str(beside) if beside.is_file() else shutil.which("ffprobe")
        return cls(ffmpeg=ffmpeg, ffprobe=ffprobe, pdftoppm=shutil.which("pdftoppm"), pdfinfo=shutil.which("pdfinfo"))

    def missing(self) -> list[str]:
        """What is not installed, in words for the start-up warning and /readyz."""
        gaps = []
        if self.ffmpeg is None or self.ffprobe is None:
            gaps.append("ffmpeg/ffprobe not found: videos, audio and images are served as uploaded, unprocessed")
        if self.pdftoppm is None or self.pdfinfo is None:
            gaps.append("poppler-utils (pdftoppm, pdfinfo) not found: PDFs get no thumbnail or page count")
        return gaps


@dataclass(frozen=True)
class Probe:
    duration: float
    width: int
    height: int
    video_codec: str | None
    audio_codec: str | None
    frame_rate: float

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


ATTACHED_PICTURE = 1  # ffprobe's disposition flag of cover art: an image, not a video stream


def probe(ffprobe: str, source: Path, *, timeout: float) -> Probe:
    """The streams of a media file; ToolFailed when ffprobe cannot read it."""
    command = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(source)]
    with tempfile.TemporaryFile() as out:
        run(command, timeout=timeout, stdout=out)
        out.seek(0)
        try:
            facts = json.load(out)
        except ValueError as exc:
            raise ToolFailed("ffprobe gave no readable answer") from exc
    video = audio = None
    for stream in facts.get("streams", []):
        attached = stream.get("disposition", {}).get("attached_pic") == ATTACHED_PICTURE
        if stream.get("codec_type") == "video" and video is None and not attached:
            video = stream
        elif stream.get("codec_type") == "audio" and audio is None:
            audio = stream
    duration = _number(facts.get("format", {}).get("duration")) or _number((video or audio or {}).get("duration"))
    return Probe(
        duration=duration,
        width=int((video or {}).get("width") or 0),
        height=int((video or {}).get("height") or 0),
        video_codec=None if video is None else str(video.get("codec_name")),
        audio_codec=None if audio is None else str(audio.get("codec_name")),
        frame_rate=_rate((video or {}).get("avg_frame_rate")) or 25.0,
    )


def _number(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _rate(value: object) -> float:
    numerator, _, denominator = str(value or "").partition("/")
    try:
        rate = float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0
    return rate if 1 <= rate <= 240 else 0.0


def run(
    command: Sequence[str],
    *,
    timeout: float,
    stdout: int | IO[bytes] = subprocess.DEVNULL,
    duration: float = 0.0,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Run a tool to its end within `timeout` seconds; ToolFailed (with stderr's tail) when it fails.

    With `on_progress` and a `duration`, the command must carry `-progress pipe:1`: its position is reported
    as a fraction of the duration.
    """
    with tempfile.TemporaryFile() as errors:
        follow = on_progress is not None and duration > 0
        with subprocess.Popen(  # noqa: S603 - fixed programs, arguments are ours
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if follow else stdout,
            stderr=errors,
        ) as process:
            timer = threading.Timer(timeout, process.kill)
            timer.daemon = True
            started = time.monotonic()
            timer.start()
            try:
                if follow and process.stdout is not None:
                    assert on_progress is not None
                    for line in process.stdout:
                        if line.startswith(b"out_time_us="):
                            position = _number(line.split(b"=", 1)[1].decode("ascii", "replace").strip()) / 1e6
                            on_progress(max(0.0, min(1.0, position / duration)))
                code = process.wait()
            finally:
                timer.cancel()
                if process.poll() is None:
                    process.kill()
        if code != 0:
            if time.monotonic() - started >= timeout:
                raise ToolTimedOut(f"{Path(command[0]).name} took longer than {timeout:.0f} s and was stopped")
            errors.seek(max(0, errors.seek(0, 2) - ERROR_TAIL))
            tail = errors.read().decode("utf-8", "replace").strip().splitlines()
            reason = tail[-1] if tail else f"exit status {code}"
            raise ToolFailed(f"{Path(command[0]).name} failed: {reason}")
