"""The `studyshelf` command."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperGroup

from studyshelf.analytics.reports.cli import app as reports_app
from studyshelf.analytics.synthetic.cli import app as analytics_app
from studyshelf.core import migrate as migrations
from studyshelf.core.db import unit_of_work
from studyshelf.core.errors import BlobIntegrityError, StudyShelfError
from studyshelf.core.logs import configure_logging
from studyshelf.lti.cli import app as lti_app
from studyshelf.media.cli import app as media_app
from studyshelf.ops.cli import app as backup_app
from studyshelf.ops.metrics import MULTIPROCESS_ENV, counts_in_files, prepare_multiprocess_dir
from studyshelf.partners.models import OrgKind, Role
from studyshelf.services import Services, command_services
from studyshelf.settings import Settings
from studyshelf.storage import BlobNotFound, BlobStore
from studyshelf.storage.crypto import EncryptedBlobStore, EncryptionKeyError
from studyshelf.storage.interface import StorageConfigError

if TYPE_CHECKING:
    from studyshelf.media.worker import MediaWorker


class _Commands(TyperGroup):
    """Report a domain error (unknown slug, taken e-mail, …) as a one-line message and exit 1, not a traceback."""

    def invoke(self, ctx: Any) -> Any:  # Any: typer's own click Context class is private
        try:
            return super().invoke(ctx)
        except StudyShelfError as exc:
            Console(stderr=True).print(f"[red]Error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(code=1) from None
        except (EncryptionKeyError, StorageConfigError) as exc:  # refuse to start, naming the setting
            Console(stderr=True).print(f"[red]Error:[/red] {exc}", highlight=False)
            raise typer.Exit(code=1) from None


app = typer.Typer(
    cls=_Commands,
    help="StudyShelf: store study materials and deliver them into Moodle and Canvas.",
    no_args_is_help=True,
)
org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
trash_app = typer.Typer(help="The trash.", no_args_is_help=True)
keys_app = typer.Typer(help="Master keys of encryption at rest (docs/security.md).", no_args_is_help=True)
app.add_typer(org_app, name="org")
app.add_typer(user_app, name="user")
app.add_typer(trash_app, name="trash")
app.add_typer(keys_app, name="keys")
app.add_typer(lti_app, name="lti")
app.add_typer(media_app, name="media")
app.add_typer(reports_app, name="reports")
app.add_typer(analytics_app, name="analytics")
app.add_typer(backup_app, name="backup")
console = Console()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    with command_services() as services:
        migrations.upgrade(services.engine)
    console.print("[green]Database is up to date.[/green]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    server: Annotated[str, typer.Option(help="granian (default: faster in `make bench`) or uvicorn.")] = "granian",
) -> None:
    """Serve the web UI and the API (migrates the embedded database first)."""
    from studyshelf.events.redis_persistence import log_redis_persistence

    logging.getLogger().setLevel(logging.INFO)  # a server's progress is news; other commands log only trouble
    from studyshelf.library.jobs import recover_storage

    with command_services() as services:
        removed = recover_storage(services)
        redis_url = services.settings.redis_url
        metrics_dir = (services.settings.data_dir / "metrics").resolve()
    if removed:
        console.print(f"Removed {removed} leftovers of interrupted uploads.")
    # Every worker writes its metric samples into this directory and /metrics adds them up. prometheus-client
    # chooses file-backed values when it is first imported, and this process imported it before it knew the
    # directory: it starts over with the variable set (same pid), so the workers it forks write files.
    if not counts_in_files() and os.environ.get(MULTIPROCESS_ENV) != str(metrics_dir):
        prepare_multiprocess_dir(metrics_dir)  # the samples of an earlier run are gone with its workers
        environment = {**os.environ, MULTIPROCESS_ENV: str(metrics_dir)}
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "studyshelf", *sys.argv[1:]], environment)  # noqa: S606 - ourselves, same arguments
    log_redis_persistence(redis_url)  # once, after the re-exec, not in every worker process
    console.print(f"StudyShelf on [bold]http://{host}:{port}[/bold] ({server}, {workers} workers)")
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "studyshelf.asgi:create",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            log_config=None,  # uvicorn's records go through the root logger (core/logs.py)
            access_log=False,  # ops/observe.py writes the access line, without the client's address
            proxy_headers=False,
            http="httptools",
            loop="uvloop",
        )
        return
    from granian.constants import Interfaces
    from granian.server import Server

    Server(
        "studyshelf.asgi:create",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_dictconfig={"loggers": {"_granian": {"handlers": [], "propagate": True}}},  # through core/logs.py
    ).serve()


@org_app.command("create")
def org_create(
    name: Annotated[str, typer.Option(help="Display name.")],
    slug: Annotated[str, typer.Option(help="Short unique id: lowercase letters, digits, hyphens.")],
    kind: Annotated[OrgKind, typer.Option(help="operator or partner.")] = OrgKind.PARTNER,
) -> None:
    """Create an organisation with its root folder."""
    from studyshelf.library.provisioning import provision_organization

    with command_services() as services, unit_of_work(services.write_sessions) as db:
        org = provision_organization(db, name=name, slug=slug, kind=kind)
        console.print(f"Created {kind.value} organisation [bold]{org.name}[/bold] ({org.slug}, id {org.id}).")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="E-mail address (the sign-in name).")],
    org: Annotated[str, typer.Option(help="Slug of the organisation to join.")],
    role: Annotated[Role, typer.Option(help="owner, admin, editor or viewer.")] = Role.VIEWER,
    password: Annotated[str | None, typer.Option(help="Password; generated and printed once when omitted.")] = None,
    platform_admin: Annotated[bool, typer.Option(help="Operator staff who may see every organisation.")] = False,
) -> None:
    """Create a user and make them a member of an organisation."""
    from studyshelf.partners import service as partners

    generated = password is None
    password = password or secrets.token_urlsafe(12)
    with command_services() as services, unit_of_work(services.write_sessions) as db:
        organisation = partners.get_organization_by_slug(db, org)
        user = partners.create_user(db, email=email, password=password)
        user.is_platform_admin = platform_admin
        partners.add_member(db, user=user, org=organisation, role=role)
    console.print(f"Created {user.email} as {role.value} of {organisation.slug}.")
    if generated:
        console.print(f"Password (shown once): [bold]{password}[/bold]")


@app.command()
def demo(
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing when organisations exist already.")] = False,
) -> None:
    """Create the demo organisations, the admin user and demo materials."""
    from studyshelf.demo.seed import seed_demo

    with command_services() as services:
        seed_demo(services, console=console, only_if_empty=if_empty)


@trash_app.command("purge")
def trash_purge(
    older_than_days: Annotated[int | None, typer.Option(help="Default: STUDYSHELF_TRASH_RETENTION_DAYS (30).")] = None,
) -> None:
    """Delete for good what has been in the trash longer than the retention, and unused blobs."""
    from studyshelf.library.jobs import purge_trash
    from studyshelf.media import models as _media_models  # noqa: F401 - its blobs are kept by the purge

    with command_services() as services:
        items, blobs = purge_trash(services, retention_days=older_than_days)
    console.print(f"Purged {items} items from the trash and {blobs} unused blobs.")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random master key (base64) for STUDYSHELF_ENCRYPTION_KEY; it is stored nowhere."""
    import base64

    from studyshelf.settings import MASTER_KEY_BYTES

    print(base64.b64encode(secrets.token_bytes(MASTER_KEY_BYTES)).decode())


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Rewrap every data key still under an old master key with the current one (content is not re-encrypted)."""
    with command_services() as services:
        store = _encrypted_store(services.blobs)
        store.recover()  # finishes a rotation that a crash interrupted (its journal would block that blob)
        done = _over_every_blob(store, store.rewrap, "Rewrapping")
    console.print(f"Rewrapped {done} data keys under master key {store.keys.current.key_id.hex()}.")


@keys_app.command("encrypt-existing")
def keys_encrypt_existing() -> None:
    """Encrypt the blobs stored before encryption was turned on (safe to run while serving, to interrupt and repeat)."""
    with command_services() as services:
        store = _encrypted_store(services.blobs)
        done = _over_every_blob(store, store.encrypt_existing, "Encrypting")
        store.mark_all_sealed()  # from now on a blob without encryption is refused, never served
    console.print(f"Encrypted {done} blobs that were stored as plaintext; every blob is now encrypted.")


def _encrypted_store(blobs: BlobStore) -> EncryptedBlobStore:
    if not isinstance(blobs, EncryptedBlobStore):
        console.print("[red]Error:[/red] set STUDYSHELF_ENCRYPTION_KEY (or _KEY_FILE) first.", highlight=False)
        raise typer.Exit(code=1)
    return blobs


def _over_every_blob(store: EncryptedBlobStore, step: Callable[[str], bool], verb: str) -> int:
    """Apply `step` to every blob with a progress bar; return how many it changed (the rest needed nothing)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    digests = list(store.iter_digests())
    changed = failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{verb} blobs", total=len(digests))
        for digest in digests:
            try:
                changed += step(digest)
            except BlobNotFound:
                pass  # purged meanwhile
            except BlobIntegrityError:
                failed += 1  # logged by the store; the blob stays as it was
            progress.advance(task)
    if failed:
        console.print(f"[red]{failed} blobs failed their integrity check and were left as they are.[/red]")
        raise typer.Exit(code=1)
    return changed


@app.command()
def worker(
    batch: Annotated[int, typer.Option(help="Events per warehouse transaction.")] = 1000,
    name: Annotated[str | None, typer.Option(help="Consumer name (default host-pid).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of this worker's /metrics (default STUDYSHELF_WORKER_METRICS_PORT; 0: none)."),
    ] = None,
) -> None:
    """Drain the Redis event stream into the warehouse until stopped (run one or many); also evaluate the alarm rules
    every minute (STUDYSHELF_ALARM_INTERVAL_SECONDS, one instance at a time) and serve /metrics on loopback."""
    logging.getLogger().setLevel(logging.INFO)
    import signal
    import threading

    from studyshelf.analytics.ingest import drain
    from studyshelf.delivery.view_counts import ViewCounts
    from studyshelf.events.redis_persistence import log_redis_persistence
    from studyshelf.jobs.runner import Scheduler
    from studyshelf.ops.metrics import serve_worker_metrics

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with command_services() as services:
        if not services.settings.redis_url:
            console.print("[yellow]No STUDYSHELF_REDIS_URL: the web process drains its own spool.[/yellow]")
            raise typer.Exit(code=2)
        settings = services.settings
        log_redis_persistence(settings.redis_url)
        consumer = name or drain.consumer_name()
        port = settings.worker_metrics_port if metrics_port is None else metrics_port
        if (server := serve_worker_metrics(settings.worker_metrics_host, port)) is not None:
            console.print(f"Metrics at http://{settings.worker_metrics_host}:{server.server_port}/metrics.")
        console.print(f"Draining events into the warehouse as {consumer}.")
        counts = ViewCounts(services)
        alarms = Scheduler(services, interval_seconds=0, alarm_interval_seconds=settings.alarm_interval_seconds)
        alarms.start()
        media_worker = _media_worker(services)
        try:
            drain.run(
                services.events,
                services.warehouse,
                stop=stop,
                consumer=consumer,
                max_count=batch,
                after_store=counts.after_store,
            )
        finally:
            alarms.stop()
            if server is not None:
                server.shutdown()
            if media_worker is not None:
                media_worker.stop()


def _media_worker(services: Services) -> MediaWorker | None:
    """Process uploads beside the drain (STUDYSHELF_MEDIA_PROCESSING), warning when ffmpeg is missing."""
    from studyshelf.media.tools import Tools
    from studyshelf.media.worker import MediaWorker

    if not services.settings.media_processing:
        return None
    for gap in Tools.find(services.settings).missing():
        console.print(f"[yellow]Media processing: {gap}.[/yellow]")
    worker = MediaWorker(services)
    worker.start()
    return worker


def main() -> None:
    try:
        settings = Settings()
    except ValidationError:
        configure_logging(level=logging.WARNING)  # the command reports the bad setting itself
    else:
        configure_logging(
            log_format=settings.log_format, personal_data=settings.log_personal_data, level=logging.WARNING
        )
    app()
