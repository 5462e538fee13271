"""`studyshelf lti …`: StudyShelf's LTI signing keys."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from studyshelf.core.clock import utcnow
from studyshelf.core.db import unit_of_work
from studyshelf.lti import keys
from studyshelf.services import command_services

app = typer.Typer(help="LTI 1.3 (Moodle, Canvas).", no_args_is_help=True)
keys_app = typer.Typer(
    help="The keys StudyShelf signs LTI messages with (published at /lti/jwks).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
console = Console()


@keys_app.command("rotate")
def rotate() -> None:
    """Add a new active key; the previous one stays in the JWKS for STUDYSHELF_LTI_KEY_GRACE_DAYS."""
    with command_services() as services, unit_of_work(services.write_sessions) as db:
        key = keys.rotate(db, secret_key=services.settings.secret_key)
        grace = services.settings.lti_key_grace_days
    console.print(f"New active key [bold]{key.kid}[/bold]; earlier keys stay published for {grace} days.")


@keys_app.command("list")
def list_keys() -> None:
    """Every key, whether it signs, and whether the JWKS still publishes it."""
    with command_services() as services, unit_of_work(services.read_sessions) as db:
        published = {k.kid for k in keys.published_keys(db, grace_days=services.settings.lti_key_grace_days)}
        rows = [(k.kid, k.created_at, k.retired_at) for k in keys.list_keys(db)]
    table = Table("kid", "created", "state", "in JWKS")
    now = utcnow()
    for kid, created, retired in rows:
        state = "active" if retired is None else f"retired {(now - retired).days} d ago"
        table.add_row(kid, created.strftime("%Y-%m-%d %H:%M"), state, "yes" if kid in published else "no")
    console.print(table if rows else "No keys yet: the first is created when /lti/jwks is first read.")
