"""`studyshelf analytics …`: synthetic traffic for demos and benchmarks."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from studyshelf.analytics.reports.cli import roll_days, zones_of
from studyshelf.analytics.reports.rollup import today
from studyshelf.analytics.synthetic.catalogue import load_catalogue, synthesise
from studyshelf.analytics.synthetic.generate import MAX_DAYS, MAX_EVENTS, Plan, generate
from studyshelf.services import command_services
from studyshelf.warehouse import WarehouseError

SYNTHETIC_FILES: Final = 2000  # the catalogue made up when the app DB has no files

app = typer.Typer(help="Analytics: synthetic traffic for demos and benchmarks.", no_args_is_help=True)
console = Console()


@app.command("generate")
def generate_command(
    events: Annotated[int, typer.Option(min=1, max=MAX_EVENTS, help="How many events to write.")],
    days: Annotated[int, typer.Option(min=1, max=MAX_DAYS, help="How many days, ending with --end-date.")] = 90,
    seed: Annotated[int | None, typer.Option(help="The same seed makes the same events (default: random).")] = None,
    end_date: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The last day filled (UTC); default yesterday.")
    ] = None,
    synthetic_files: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=1_000_000,
            help=f"Made-up files to add to the app DB's (default: {SYNTHETIC_FILES} if it has none, else 0).",
        ),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=1_000_000, help="Events per warehouse insert.")] = 50_000,
    rollups: Annotated[
        bool, typer.Option(help="Roll the filled days up afterwards, so dashboards and reports read them at once.")
    ] = True,
) -> None:
    """Fill the warehouse with realistic, skewed traffic over the app DB's files (or a made-up catalogue)."""
    seed = secrets.randbelow(1 << 31) if seed is None else seed
    with command_services() as services:
        now = services.clock.now()
        end = end_date.date() if end_date is not None else now.date() - timedelta(days=1)
        plan = Plan(events=events, end=end, days=days, seed=seed, batch=batch)
        with services.read_sessions() as db:
            catalogue = load_catalogue(db, now=now)
        real = catalogue.real_files
        extra = synthetic_files if synthetic_files is not None else (0 if real else SYNTHETIC_FILES)
        if real + extra == 0:
            console.print("[red]Error:[/red] no files to make traffic for: pass --synthetic-files N.")
            raise typer.Exit(code=1)
        rng = random.Random(f"studyshelf-synthetic-catalogue-{seed}")  # noqa: S311 - reproducible on purpose
        synthesise(catalogue, rng=rng, files=extra)
        console.print(
            f"{events:,} events over {days} days ({plan.start} to {plan.end}, UTC), seed {seed}: "
            f"{len(catalogue.files):,} files ({real:,} from the app DB), {len(catalogue.orgs)} organisations."
        )
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("Writing", total=events)
                added = generate(services.warehouse, catalogue, plan, progress=lambda n: bar.advance(task, n))
        except WarehouseError as exc:
            console.print(f"[red]Error:[/red] the warehouse refused the events: {exc}")
            raise typer.Exit(code=1) from None
        skipped = f" ({events - added:,} were there already)" if added < events else ""
        console.print(f"[green]Wrote {added:,} new events[/green]{skipped}.")
        if rollups:
            filled = [plan.start + timedelta(days=i) for i in range(plan.days)]
            rows = 0
            for tz in zones_of(services, None):  # each zone's finished days only
                rows += roll_days(services, [d for d in filled if d < today(tz, now)], [tz])
            console.print(f"Rolled the filled days up: {rows:,} rollup rows.")
