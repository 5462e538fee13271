"""`studyshelf media …`: queue existing files for processing, run the queue, see where it stands."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy import func, select

from studyshelf.core.db import unit_of_work
from studyshelf.media.models import MediaJob
from studyshelf.media.service import requeue_failed
from studyshelf.media.tools import Tools
from studyshelf.media.worker import discover, process_pending
from studyshelf.services import command_services

app = typer.Typer(help="Media processing: HLS renditions, posters, thumbnails.", no_args_is_help=True)
console = Console()


@app.command("backfill")
def backfill(
    retry_failed: Annotated[
        bool, typer.Option(help="Also queue the jobs that failed (after installing ffmpeg).")
    ] = False,
) -> None:
    """Queue every current file version that has never been processed (files uploaded before processing)."""
    with command_services() as services:
        queued = discover(services)
        if retry_failed:
            with unit_of_work(services.write_sessions) as db:
                queued += requeue_failed(db, now=services.clock.now())
    console.print(f"Queued {queued} file versions; serve or `studyshelf worker` processes them.")


@app.command("process")
def process() -> None:
    """Process what is queued now, in this process, and stop when the queue is empty."""
    with command_services() as services:
        for gap in Tools.find(services.settings).missing():
            console.print(f"[yellow]{gap}[/yellow]")
        ran = process_pending(services)
    console.print(f"Ran {ran} processing jobs.")


@app.command("status")
def status() -> None:
    """How many jobs are queued, running, done and failed."""
    with command_services() as services, unit_of_work(services.read_sessions) as db:
        rows = db.execute(select(MediaJob.state, func.count()).group_by(MediaJob.state)).all()
        counts = {state: int(count) for state, count in rows}
    for state in ("queued", "running", "done", "failed"):
        console.print(f"{state:8} {counts.get(state, 0)}")
