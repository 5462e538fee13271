"""Settings: the only module that reads the environment."""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from studyshelf.core.keys import DEFAULT_MEDIA_KEY_ID
from studyshelf.core.outbound import parse_networks

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name in the data dir, not a secret
MIN_SECRET_BYTES = 32
MASTER_KEY_BYTES = 32
# Values that once shipped in the code or its docs: public, so never accepted as a secret.
PUBLISHED_SECRET_KEYS = frozenset({"insecure-development-key-change-me"})
_MEDIA_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_ACCEL_PREFIX = re.compile(r"/(?:(?!\.+/)[A-Za-z0-9_.-]+/)+")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?")


class Settings(BaseSettings):
    """Everything StudyShelf can be configured with (env prefix STUDYSHELF_)."""

    model_config = SettingsConfigDict(env_prefix="STUDYSHELF_", extra="forbid", env_file=None)

    environment: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = None
    storage_url: str | None = None
    warehouse_url: str | None = None
    redis_url: str | None = None
    secret_key: str = Field(
        default="",
        repr=False,
        description="signs every token; unset: generated on first start and kept in <data_dir>/secret_key (mode 0600)",
    )
    base_url: str = "http://127.0.0.1:8000"
    admin_email: str = "admin@studyshelf.local"
    admin_password: str | None = None
    max_upload_bytes: int = Field(default=5 * 1024**3, ge=1)
    trash_retention_days: int = Field(default=30, ge=0)
    session_lifetime_hours: int = Field(default=12, ge=1)
    trusted_proxies: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(
        default=1024**2, ge=1024, description="largest JSON or form body; uploads have max_upload_bytes instead"
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="failed sign-ins to one account from one network before the back-off starts"
    )
    login_window_seconds: int = Field(default=900, ge=1, description="how long a failed sign-in counts")
    login_backoff_max_seconds: int = Field(
        default=900, ge=1, description="longest wait the sign-in back-off imposes (it doubles from 1 s)"
    )
    login_account_max_failures: int = Field(
        default=100, ge=1, description="failed sign-ins to one account from all networks that stop its sign-ins"
    )
    login_network_max_failures: int = Field(
        default=50, ge=1, description="failed sign-ins from one network, to any accounts, before the back-off starts"
    )
    smtp_url: str | None = None
    scheduler_interval_seconds: int = Field(default=300, ge=0, description="0 turns the in-process scheduler off")
    alarm_interval_seconds: int = Field(
        default=60,
        ge=0,
        le=3600,
        description="how often the scheduler (serve's and `studyshelf worker`'s) evaluates the alarm rules and sends "
        "the outbox; 0: only with the scheduler's other jobs",
    )
    worker_metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="port of `studyshelf worker`'s /metrics (0: none)"
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", min_length=1, description="address `studyshelf worker`'s /metrics listens on (loopback)"
    )
    media_url_ttl_seconds: int = Field(default=600, ge=30, le=600, description="life of a signed /m/ URL")
    media_keys: dict[str, str] = Field(
        default_factory=dict,
        description="extra media URL keys, id → secret (k1 is derived from secret_key unless given here)",
    )
    media_key_id: str | None = Field(default=None, description="which media key signs (default k1)")
    lti_key_grace_days: int = Field(
        default=7, ge=0, description="days a rotated-out LTI key stays in the JWKS, so LMSs keep verifying"
    )
    lti_jwks_cache_seconds: int = Field(
        default=300,
        ge=0,
        description="how long a JWKS may be cached: platforms' by StudyShelf, and /lti/jwks by platforms (its "
        "max-age); a rotated LTI key signs only once this has passed (plus a minute)",
    )
    lti_state_ttl_seconds: int = Field(default=600, ge=60, le=3600, description="life of an LTI login state")
    lti_registration_link_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="life of a single-use dynamic-registration URL"
    )
    lti_registration_link_days: int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="deprecated: use lti_registration_link_hours (days × 24 when only this is set)",
    )

    outbound_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs the outbound client may reach although private or loopback (an LMS or webhook "
        'receiver on the internal network), as a JSON list: ["10.20.0.0/16"]',
    )

    encryption_key: str = Field(
        default="",
        repr=False,
        description="master key for blobs at rest: 32 random bytes as base64 (44 characters) or hex (64); "
        "unset: blobs are stored as they are (docs/security.md)",
    )
    encryption_key_file: Path | None = Field(
        default=None, description="a file holding the master key instead of STUDYSHELF_ENCRYPTION_KEY"
    )
    encryption_old_keys: list[str] = Field(
        default_factory=list,
        repr=False,
        description="previous master keys as a JSON list, kept so blobs stay readable until "
        "`studyshelf keys rotate` has rewrapped them under the current key",
    )

    s3_endpoint_url: str | None = Field(
        default=None,
        description="the S3-compatible service (MinIO, Ceph RGW, R2: https://<account>.r2.cloudflarestorage.com); "
        "unset: AWS S3",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="where browsers reach the S3 service, when it differs from s3_endpoint_url (an internal host "
        "name): presigned delivery URLs point here; unset: s3_endpoint_url",
    )
    s3_region: str | None = Field(default=None, description="the bucket's region (R2: auto); unset: boto3's default")
    s3_access_key_id: str | None = Field(
        default=None, description="unset: boto3's default credential chain (environment, profile, instance role)"
    )
    s3_secret_access_key: SecretStr | None = Field(default=None, description="the secret of s3_access_key_id")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto", description="path for MinIO and Ceph RGW without wildcard DNS; virtual or auto for AWS and R2"
    )
    s3_delivery: Literal["stream", "presigned"] = Field(
        default="stream",
        description="stream: bytes go through StudyShelf; presigned: downloads and /m/ answer 302 to a short-lived "
        "presigned S3 URL (never for an encrypted store, whose bytes must be decrypted on the way)",
    )
    accel_redirect: str = Field(
        default="",
        description="nginx's internal location of the blob directory, e.g. /_protected/: authorised downloads and "
        "media of the local, unencrypted store answer with X-Accel-Redirect and nginx sends the bytes; empty: off",
    )
    cdn: Literal["", "cloudfront"] = Field(
        default="", description="cloudfront: media URLs are CloudFront signed URLs on cdn_domain; empty: our own /m/"
    )
    cdn_domain: str = Field(default="", description="the CDN distribution's host name, e.g. media.example.edu")
    cdn_key_pair_id: str = Field(default="", description="CloudFront: the public key's id in the trusted key group")
    cdn_private_key_file: Path | None = Field(
        default=None, description="CloudFront: the PEM file of the RSA private key that signs media URLs"
    )

    geoip_mmdb: Path | None = Field(default=None, description="a MaxMind .mmdb for city-grade country lookups")
    event_retention_days: int = Field(default=400, ge=1, description="days raw analytics events are kept")
    event_stream_url: str | None = Field(
        default=None, description="memory:// for tests; unset: Redis Streams when redis_url is set, else the spool"
    )
    redis_stream: str = Field(default="studyshelf:events", min_length=1, description="the Redis stream of events")
    redis_key_prefix: str = Field(
        default="studyshelf:",
        min_length=1,
        description="prefix of the keys that limits shared by instances keep in Redis (beacon replays and rates)",
    )
    event_claim_idle_seconds: float = Field(
        default=30.0, gt=0, description="pending events idle this long are taken over from a dead consumer"
    )
    spool_fsync_ms: float = Field(
        default=0.0,
        ge=0,
        description="extra wait for company before an fsync (0: at once; publishers arriving meanwhile share the next)",
    )
    spool_fsync_events: int = Field(default=256, ge=1, description="waiting events that trigger an fsync at once")
    spool_segment_bytes: int = Field(default=16 * 1024**2, ge=4096, description="size of a spool segment file")
    event_drain_batch: int = Field(default=1000, ge=1, description="events per warehouse transaction")
    beacon_rate_per_minute: int = Field(
        default=60, ge=1, description="client beacons accepted per viewer session and minute, across instances"
    )
    radar_flush_seconds: float = Field(
        default=1.0, gt=0, description="how often a web process writes the leak radar's sightings (its lag)"
    )
    beacon_events_per_view: int = Field(
        default=1, ge=1, description="client beacons accepted per page view, across processes (the page sends one)"
    )
    beacon_playbacks_per_view: int = Field(
        default=30,
        ge=1,
        description="playback reports accepted per page view (one per pause, end or leaving the page), apart from "
        "its load outcome",
    )

    backup_url: str | None = Field(
        default=None,
        description="where backups go: a directory (a path or file:///path) or s3://bucket/prefix; unset: no backups",
    )
    backup_sync_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="how often Litestream ships new database pages and `backup replicate` looks for new files' blobs "
        "(bounds what a crash loses)",
    )
    backup_snapshot_interval_hours: int = Field(
        default=24, ge=1, description="how often Litestream writes a full database snapshot to the backup"
    )
    backup_retention_days: int = Field(
        default=35, ge=1, description="how far back a restore can go: older snapshots and points are pruned"
    )
    backup_blob_sync_seconds: int = Field(
        default=60,
        ge=1,
        description="how often `backup replicate` checks every blob against the backup and writes a blob manifest",
    )
    backup_pgbackrest_config: Path = Field(
        default=Path("/etc/pgbackrest/pgbackrest.conf"),
        description="PostgreSQL: pgBackRest's config file (its repository: a directory or S3; see deploy/pgbackrest)",
    )
    backup_pgbackrest_stanza: str = Field(
        default="studyshelf", min_length=1, description="PostgreSQL: the pgBackRest stanza of the app database"
    )
    backup_pgbackrest_command: list[str] = Field(
        default=["pgbackrest"],
        min_length=1,
        description='PostgreSQL: pgBackRest run as the cluster OS user, e.g. ["sudo","-u","postgres","pgbackrest"]',
    )
    incident_deadline_hours: float = Field(
        default=14.0, gt=0, le=24 * 30, description="time to mitigate an incident before it is breached and escalated"
    )
    incident_deadline_hours_by_severity: dict[str, float] = Field(
        default_factory=dict,
        description='per alarm severity, overriding incident_deadline_hours, e.g. {"critical": 4, "warning": 24}',
    )
    backup_max_lag_seconds: float = Field(
        default=60.0, gt=0, description="a backup lagging longer than this makes /readyz say degraded"
    )

    metrics_allow: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="CIDRs whose clients may read /metrics (the client address as web/security.py judges it, "
        'behind trusted proxies), as a JSON list: ["10.0.0.0/8"]',
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="a bearer token that reads /metrics from any address (unset: networks only)"
    )
    media_processing: bool = Field(
        default=True,
        description="make HLS renditions, posters and thumbnails of uploads (off: originals are served as they are)",
    )
    ffmpeg_path: str = Field(
        default="ffmpeg", description="the ffmpeg program (a name on PATH or a path); ffprobe is looked for beside it"
    )
    media_timeout_seconds: int = Field(
        default=3600, ge=10, description="longest one processing run may take before it fails (the original stays)"
    )
    media_max_duration_seconds: int = Field(
        default=4 * 3600, ge=1, description="longer videos and audio are not processed (failed clearly)"
    )
    media_poll_seconds: float = Field(
        default=2.0, gt=0, description="how often serve's and the worker's processing loop looks for new uploads"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="auto: readable lines when stderr is a terminal, JSON lines otherwise"
    )
    log_personal_data: bool = Field(
        default=False,
        description="keep client addresses, user agents and e-mail addresses in the logs (off: dropped or replaced)",
    )

    @model_validator(mode="after")
    def _resolve_secret_key(self) -> Settings:
        if not self.secret_key:
            self.secret_key = load_or_create_install_secret(self.data_dir)
        if self.secret_key in PUBLISHED_SECRET_KEYS:
            raise ValueError("STUDYSHELF_SECRET_KEY is a published example value; unset it or set a long random one")
        if self.environment == "production" and len(self.secret_key.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"STUDYSHELF_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes in production "
                f"(for example: {secrets.token_urlsafe(48)})"
            )
        return self

    @model_validator(mode="after")
    def _check_incident_deadlines(self) -> Settings:
        for severity, hours in self.incident_deadline_hours_by_severity.items():
            if not 0 < hours <= 24 * 30:
                raise ValueError(
                    f"STUDYSHELF_INCIDENT_DEADLINE_HOURS_BY_SEVERITY: {severity!r} must be over 0 and at most 720 hours"
                )
        return self

    @model_validator(mode="after")
    def _check_media_keys(self) -> Settings:
        for kid, secret in self.media_keys.items():
            if not _MEDIA_KEY_ID.fullmatch(kid):
                raise ValueError(f"STUDYSHELF_MEDIA_KEYS: key id {kid!r} must be 1–16 of [A-Za-z0-9_-]")
            if len(secret) < 32:
                raise ValueError(f"STUDYSHELF_MEDIA_KEYS: the secret of {kid!r} must be at least 32 characters")
        if self.media_key_id not in (None, DEFAULT_MEDIA_KEY_ID, *self.media_keys):
            raise ValueError(f"STUDYSHELF_MEDIA_KEY_ID {self.media_key_id!r} is not in STUDYSHELF_MEDIA_KEYS")
        return self

    @model_validator(mode="after")
    def _check_delivery_offload(self) -> Settings:
        prefix = self.accel_redirect
        if prefix and not (prefix.startswith("/") and prefix.endswith("/") and _ACCEL_PREFIX.fullmatch(prefix)):
            raise ValueError("STUDYSHELF_ACCEL_REDIRECT must be a location like /_protected/ (leading and trailing /)")
        if self.cdn == "cloudfront":
            missing = [
                f"STUDYSHELF_{name.upper()}"
                for name in ("cdn_domain", "cdn_key_pair_id", "cdn_private_key_file")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"STUDYSHELF_CDN=cloudfront needs {', '.join(missing)}")
            if not _HOST.fullmatch(self.cdn_domain):
                raise ValueError("STUDYSHELF_CDN_DOMAIN must be a bare host name, e.g. d111111abcdef8.cloudfront.net")
        return self

    @model_validator(mode="after")
    def _check_networks(self) -> Settings:
        for name, networks in (
            ("STUDYSHELF_OUTBOUND_ALLOWED_NETWORKS", self.outbound_allowed_networks),
            ("STUDYSHELF_METRICS_ALLOW", self.metrics_allow),
        ):
            try:
                parse_networks(networks)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from exc
        return self

    @model_validator(mode="after")
    def _check_s3(self) -> Settings:
        if bool(self.s3_access_key_id) != (self.s3_secret_access_key is not None):
            raise ValueError("set STUDYSHELF_S3_ACCESS_KEY_ID and STUDYSHELF_S3_SECRET_ACCESS_KEY together, or neither")
        public = self.s3_public_endpoint_url
        if public is not None and not (public.startswith(("http://", "https://")) and urlsplit(public).netloc):
            raise ValueError("STUDYSHELF_S3_PUBLIC_ENDPOINT_URL: an http(s) URL that browsers can reach")
        if self.storage_url and self.storage_url.startswith("s3://") and not self.storage_url[5:].split("/")[0]:
            raise ValueError("STUDYSHELF_STORAGE_URL: name the bucket, as in s3://bucket/prefix")
        return self

    @model_validator(mode="after")
    def _check_backup_url(self) -> Settings:
        url = self.backup_url
        if url and url.startswith("s3://"):
            if not url.removeprefix("s3://").split("/", 1)[0]:
                raise ValueError("STUDYSHELF_BACKUP_URL: an S3 location needs a bucket: s3://bucket/prefix")
        elif url and "://" in url and not url.startswith("file://"):
            raise ValueError("STUDYSHELF_BACKUP_URL: a directory (a path or file:///path) or s3://bucket/prefix")
        return self

    @property
    def backup_dir(self) -> Path | None:
        """The backup location's directory, or None when backups are off or go to S3."""
        if not self.backup_url or self.backup_url.startswith("s3://"):
            return None
        return Path(self.backup_url.removeprefix("file://")).resolve()

    @property
    def backup_s3(self) -> tuple[str, str] | None:
        """(bucket, key prefix without slashes at the ends) when backups go to S3."""
        if not self.backup_url or not self.backup_url.startswith("s3://"):
            return None
        bucket, _, prefix = self.backup_url.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    @model_validator(mode="after")
    def _check_encryption_keys(self) -> Settings:
        if self.encryption_key and self.encryption_key_file is not None:
            raise ValueError("set STUDYSHELF_ENCRYPTION_KEY or STUDYSHELF_ENCRYPTION_KEY_FILE, not both")
        self.encryption_master_keys()
        return self

    def encryption_master_keys(self) -> list[bytes]:
        """The blob master keys, current first, then the old ones; empty when encryption is off."""
        current = self.encryption_key
        setting = "STUDYSHELF_ENCRYPTION_KEY"
        if self.encryption_key_file is not None:
            setting = "STUDYSHELF_ENCRYPTION_KEY_FILE"
            try:
                current = self.encryption_key_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"{setting}: cannot read {self.encryption_key_file}: {exc.strerror}") from None
        if not current:
            if self.encryption_old_keys:
                raise ValueError("STUDYSHELF_ENCRYPTION_OLD_KEYS is set without a current STUDYSHELF_ENCRYPTION_KEY")
            return []
        keys = [parse_master_key(current, setting=setting)]
        keys += [parse_master_key(old, setting="STUDYSHELF_ENCRYPTION_OLD_KEYS") for old in self.encryption_old_keys]
        return keys

    @property
    def lti_registration_link_lifetime(self) -> timedelta:
        """The life of a registration URL: the hours setting, or the deprecated days one when only it is set."""
        if self.lti_registration_link_days is not None and "lti_registration_link_hours" not in self.model_fields_set:
            return timedelta(days=self.lti_registration_link_days)
        return timedelta(hours=self.lti_registration_link_hours)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'studyshelf.sqlite3').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'blobs').resolve()}"

    @property
    def resolved_warehouse_url(self) -> str:
        if self.warehouse_url:
            return self.warehouse_url
        return f"duckdb://{(self.data_dir / 'warehouse.duckdb').resolve()}"

    @property
    def is_embedded_database(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")


def parse_master_key(text: str, *, setting: str) -> bytes:
    """Decode a master key: 32 bytes as 64 hex digits or as base64; the error names the setting, never the value."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 2 * MASTER_KEY_BYTES else base64.b64decode(text, validate=True)
    except ValueError:
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise ValueError(
            f"{setting}: a master key is {MASTER_KEY_BYTES} random bytes as base64 or hex "
            "(make one with `studyshelf keys generate`)"
        )
    return key


def load_or_create_install_secret(data_dir: Path) -> str:
    """Return the install's secret from the data dir, creating it (384 random bits, mode 0600) on first start."""
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        draft = data_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() never replaces: when two processes start at once, the first secret wins and both read it.
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} is readable by other users; run: chmod 600 {path}")
    secret = path.read_text().strip()
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"{path} holds fewer than {MIN_SECRET_BYTES} bytes; delete it to generate a new secret")
    return secret
