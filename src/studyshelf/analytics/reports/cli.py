"""`studyshelf reports …`: roll finished days up by hand (one day, or a range with a progress bar)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Final

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from studyshelf.analytics.reports import rollup
from studyshelf.core import lease
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Invalid
from studyshelf.services import Services, command_services

MAX_BACKFILL_DAYS: Final = 3660
app = typer.Typer(help="Daily rollups of usage (what dashboards and daily reports read).", no_args_is_help=True)
console = Console()
TzOption = Annotated[
    str | None,
    typer.Option(
        "--tz", help="One IANA time zone (e.g. Europe/Berlin); default: UTC and every zone organisations use."
    ),
]


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD.", param_hint=option) from None


def zones_of(services: Services, tz: str | None) -> list[str]:
    if tz is not None:
        rollup.zone(tz)
        return [tz]
    with unit_of_work(services.read_sessions) as db:
        return rollup.time_zones(db)


def _finished(zones: list[str], last: date, *, now: datetime) -> None:
    for tz in zones:
        if last >= rollup.today(tz, now):
            raise Invalid(f"{last.isoformat()} has not ended yet in {tz}: only finished days can be rolled up.")


def roll_days(services: Services, days: list[date], zones: list[str]) -> int:
    """Roll each day of each zone under the rollups' lease, with a progress bar; return the rows written."""
    written = 0
    with rollup.rollups_lease(services) as held:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=len(days) * len(zones) == 1) as progress:
            task = progress.add_task("Rolling up", total=len(days) * len(zones))
            for tz in zones:
                for day in days:
                    progress.update(task, description=f"{day.isoformat()} {tz}")
                    written += rollup.roll_day(services, tz, day)
                    lease.renew(services.write_sessions, held, now=services.clock.now(), ttl=rollup.LEASE_TTL)
                    progress.advance(task)
    return written


@app.command("run")
def run(
    day: Annotated[str, typer.Option("--date", help="The day to roll up, YYYY-MM-DD (a finished day).")],
    tz: TzOption = None,
) -> None:
    """Roll one finished day up again (replaces that day's rollups; safe to repeat)."""
    wanted = _day(day, "--date")
    with command_services() as services:
        zones = zones_of(services, tz)
        _finished(zones, wanted, now=services.clock.now())
        rows = roll_days(services, [wanted], zones)
    console.print(f"Rolled up {wanted.isoformat()} in {', '.join(zones)}: {rows} rows.")


@app.command("backfill")
def backfill(
    first: Annotated[str, typer.Option("--from", help="The first day, YYYY-MM-DD.")],
    last: Annotated[str, typer.Option("--to", help="The last day, YYYY-MM-DD, inclusive (a finished day).")],
    tz: TzOption = None,
) -> None:
    """Roll every day of a range up again, oldest first, with a progress bar (safe to repeat or interrupt)."""
    start, end = _day(first, "--from"), _day(last, "--to")
    if end < start:
        raise typer.BadParameter(f"--to {end.isoformat()} is before --from {start.isoformat()}.", param_hint="--to")
    count = (end - start).days + 1
    if count > MAX_BACKFILL_DAYS:
        raise typer.BadParameter(f"At most {MAX_BACKFILL_DAYS} days at a time ({count} asked).", param_hint="--from")
    with command_services() as services:
        zones = zones_of(services, tz)
        _finished(zones, end, now=services.clock.now())
        rows = roll_days(services, [start + timedelta(days=i) for i in range(count)], zones)
    console.print(f"Rolled up {count} days ({start} to {end}) in {', '.join(zones)}: {rows} rows.")
