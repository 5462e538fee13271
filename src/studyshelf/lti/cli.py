"""`studyshelf lti …`: StudyShelf's LTI signing keys."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table

from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import Conflict
from studyshelf.lti import keys
from studyshelf.services import command_services

app = typer.Typer(help="LTI 1.3 (Moodle, Canvas).", no_args_is_help=True)
keys_app = typer.Typer(
    help="The keys StudyShelf signs LTI messages with (published at /lti/jwks).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
console = Console()


@keys_app.command("rotate")
def rotate(
    now: bool = typer.Option(
        False, "--now", help="Emergency: sign with the new key at once (platforms with a cached JWKS may refuse it)."
    ),
) -> None:
    """Publish a new key; it signs once cached JWKS expired, and the previous one stays published for the grace."""
    with command_services() as services, unit_of_work(services.write_sessions) as db:
        settings = services.settings
        moment = services.clock.now()
        try:
            key = keys.rotate(
                db,
                keys=services.keys,
                jwks_cache_seconds=settings.lti_jwks_cache_seconds,
                immediately=now,
                now=moment,
            )
        except Conflict as exc:
            console.print(f"{exc.detail} Wait until then, or rotate --now.")
            raise typer.Exit(1) from exc
        kid, signs_from = key.kid, key.signs_from
    grace = settings.lti_key_grace_days
    when = "now" if signs_from <= moment else f"from {_when(signs_from)}"
    console.print(
        f"New key [bold]{kid}[/bold] is published and signs {when}; "
        f"the previous key stays published for {grace} days after that."
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@keys_app.command("list")
def list_keys() -> None:
    """Every key and its state: published (not signing yet), signing, retiring (still published), retired."""
    with command_services() as services, unit_of_work(services.read_sessions) as db:
        grace = services.settings.lti_key_grace_days
        now = services.clock.now()
        rows = [keys.key_status(k, grace_days=grace, now=now) for k in keys.list_keys(db)]
    table = Table("kid", "created", "state", "in JWKS", "next")
    for row in rows:
        upcoming = f"{row.next_state} from {_when(row.changes_at)}" if row.changes_at and row.next_state else ""
        in_jwks = "no" if row.state == "retired" else "yes"
        table.add_row(row.kid, _when(row.created_at), row.state, in_jwks, upcoming)
    console.print(table if rows else "No keys yet: the first is created when /lti/jwks is first read.")
