"""How the replica's lag is worked out from positions (the drills check it against a real Litestream)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studyshelf.ops.backup import ReplicaState, waiting_since
from studyshelf.ops.litestream import Capture, WalPosition

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SALTS = b"\x01" * 8


def _state(**changes: object) -> ReplicaState:
    taken = Capture(7, 7, T0, WalPosition(SALTS, 40_000))
    base: dict[str, object] = {
        "database": WalPosition(SALTS, 40_000),
        "taken": taken,
        "shipped_txid": 7,
        "shipped_at": T0,
        "oldest_shipped_at": T0 - timedelta(days=1),
        "first_unshipped": None,
        "wal_written_at": T0,
        "replicator_running": True,
    }
    return ReplicaState(**{**base, **changes})  # type: ignore[arg-type]


def test_nothing_waits_when_the_replica_has_the_database_s_position() -> None:
    assert waiting_since(_state(), interval=1) is None
    assert waiting_since(_state(database=WalPosition(b"\x02" * 8, 0)), interval=1) is None  # an empty WAL
    assert waiting_since(_state(database=None), interval=1) is None  # nobody has the database open


def test_a_change_taken_but_not_shipped_waits_since_it_was_taken() -> None:
    unshipped = Capture(8, 9, T0 + timedelta(seconds=5), WalPosition(SALTS, 90_000))
    state = _state(taken=unshipped, database=unshipped.wal, first_unshipped=unshipped)
    assert waiting_since(state, interval=1) == T0 + timedelta(seconds=5)


def test_a_change_not_taken_waits_since_the_last_take_unless_the_replicator_is_due_to_take_it() -> None:
    moved = WalPosition(SALTS, 44_120)
    written = T0 + timedelta(minutes=30)
    stopped = _state(database=moved, wal_written_at=written, replicator_running=False)
    assert waiting_since(stopped, interval=1) == T0
    running = _state(database=moved, wal_written_at=written)
    assert waiting_since(running, interval=1) == written - timedelta(seconds=1)
    restarted = _state(database=WalPosition(b"\x03" * 8, 4152), replicator_running=False)  # a new WAL
    assert waiting_since(restarted, interval=1) == T0
