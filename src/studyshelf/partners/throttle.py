"""Sign-in throttling without lockout: back-off per (account, client network), a ceiling per account.

A failed sign-in is a row in `login_failures` under three keys: the account with the client's network,
the account alone, and the network alone. Failures count while they are younger than the window.

- account + network: after `max_failures`, each further attempt waits 1 s, 2 s, 4 s … (at most
  `backoff_max`) after the last failure. Someone guessing from one network slows only themselves; the
  owner signing in from their own network is not affected. A success clears this key.
- account: at `account_max_failures` (far above the former lockout) the account takes no sign-ins
  until enough failures leave the window: the bound on guessing spread over many networks.
- network: after `network_max_failures`, the same back-off for any account: one network spraying a
  password over many accounts. A success does not clear it (nor the account key).

Networks are IPv4 /24 and IPv6 /64, so that one host cannot escape by changing its last bits. Every key
names the account by a hash of the e-mail address as typed, whether the account exists or not: a
throttled answer is the same for both. Rows are shared by every process through the database.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from studyshelf.core import clock
from studyshelf.core.errors import TooManyRequests
from studyshelf.core.ids import sha256_hex
from studyshelf.partners.models import LoginFailure
from studyshelf.settings import Settings


@dataclass(frozen=True)
class ThrottlePolicy:
    max_failures: int
    network_max_failures: int
    account_max_failures: int
    window: timedelta
    backoff_max: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            max_failures=settings.login_max_failures,
            network_max_failures=settings.login_network_max_failures,
            account_max_failures=settings.login_account_max_failures,
            window=timedelta(seconds=settings.login_window_seconds),
            backoff_max=timedelta(seconds=settings.login_backoff_max_seconds),
        )


@dataclass(frozen=True)
class SignInKeys:
    """The `login_failures` keys of one sign-in attempt."""

    pair: str
    account: str
    network: str

    @classmethod
    def of(cls, *, email: str, client: str) -> SignInKeys:
        account = sha256_hex(email.strip().lower())
        network = client_network(client)
        return cls(pair=f"pair:{account}:{network}", account=f"account:{account}", network=f"net:{network}")


def client_network(client: str) -> str:
    """The network a client address is counted in: IPv4 /24, IPv6 /64 (an IPv4-mapped address as IPv4)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client[:64]  # no address (a test client, a Unix socket): the peer as it was named
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def _backoff_until(last: datetime, *, count: int, threshold: int, policy: ThrottlePolicy) -> datetime | None:
    if count < threshold:
        return None
    doublings = min(count - threshold, 30)
    return last + min(timedelta(seconds=2**doublings), policy.backoff_max)


def _failures(db: Session, key: str, since: datetime) -> tuple[int, datetime | None]:
    row = db.execute(
        select(func.count(), func.max(LoginFailure.at)).where(LoginFailure.key == key, LoginFailure.at >= since)
    ).one()
    return int(row[0] or 0), (clock.as_utc(row[1]) if row[1] is not None else None)


def _ceiling_until(db: Session, key: str, *, count: int, since: datetime, policy: ThrottlePolicy) -> datetime | None:
    """When enough of the account's failures have left the window for it to be under the ceiling again."""
    if count < policy.account_max_failures:
        return None
    query = select(LoginFailure.at).where(LoginFailure.key == key, LoginFailure.at >= since)
    oldest_to_expire = db.scalar(query.order_by(LoginFailure.at).offset(count - policy.account_max_failures).limit(1))
    return clock.as_utc(oldest_to_expire) + policy.window if oldest_to_expire is not None else None


def _one_attempt_at_a_time(db: Session, keys: SignInKeys) -> None:
    """Queue the attempts of one (account, network) until the transaction ends, so that parallel guesses
    cannot all pass the check before any of them is recorded. SQLite's writers queue already (BEGIN
    IMMEDIATE); on PostgreSQL a transaction-level advisory lock does it.
    """
    if db.get_bind().dialect.name == "postgresql":
        lock_id = int.from_bytes(bytes.fromhex(sha256_hex(keys.pair))[:8], "big", signed=True)
        db.execute(select(func.pg_advisory_xact_lock(lock_id)))


def check(db: Session, *, keys: SignInKeys, policy: ThrottlePolicy, now: datetime) -> None:
    """Raise TooManyRequests (with `retry_after` seconds) when this attempt must wait."""
    _one_attempt_at_a_time(db, keys)
    since = now - policy.window
    waits: list[datetime] = []
    for key, threshold in ((keys.pair, policy.max_failures), (keys.network, policy.network_max_failures)):
        count, last = _failures(db, key, since)
        if last is not None and (until := _backoff_until(last, count=count, threshold=threshold, policy=policy)):
            waits.append(until)
    count, _last = _failures(db, keys.account, since)
    if until := _ceiling_until(db, keys.account, count=count, since=since, policy=policy):
        waits.append(until)
    retry_at = max(waits, default=now)
    if retry_at > now:
        seconds = max(1, math.ceil((retry_at - now).total_seconds()))
        raise TooManyRequests(f"Too many failed sign-ins. Try again in {_duration(seconds)}.", retry_after=seconds)


def record_failure(db: Session, *, keys: SignInKeys, now: datetime) -> None:
    db.add_all([LoginFailure(key=key, at=now) for key in (keys.pair, keys.account, keys.network)])
    db.flush()


def record_success(db: Session, *, keys: SignInKeys) -> None:
    """Clear the back-off of this account on this network; the account's and the network's counts stay."""
    db.execute(delete(LoginFailure).where(LoginFailure.key == keys.pair))


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"
