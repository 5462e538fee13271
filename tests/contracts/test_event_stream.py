"""The EventStream behaviour suite, written once; each backend only supplies the `stream` fixture."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from studyshelf.core.clock import MovableClock
from studyshelf.events import Event, EventStream
from studyshelf.events.memory import MemoryEventStream
from studyshelf.events.redis_streams import ENTRY_EVENTS, RedisStreamsEventStream
from studyshelf.events.schema import encode_lines
from studyshelf.events.spool import SpoolEventStream
from tests.analytics.support import REDIS_URL, event, redis_available
from tests.conftest import require_service

IDLE = 0.3  # seconds before another consumer may take over unacked events

ACCEPTED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # when the first event of a lag test is accepted

Reopen = Callable[[], EventStream]
PublishAt = Callable[[datetime, Sequence[Event]], None]  # publish as the buffer's clock reads that time


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def read_all(stream: EventStream, consumer: str = "c1") -> list[Event]:
    found: list[Event] = []
    while batch := stream.read(consumer=consumer, max_count=100).events:
        found += batch
    return found


class EventStreamContract:
    """Behaviour every event stream must have."""

    def test_published_events_come_back_in_order(self, stream: EventStream) -> None:
        sent = [event(viewer=f"v{i}") for i in range(5)]
        stream.publish(sent[:2])
        stream.publish(sent[2:])
        batch = stream.read(consumer="c1", max_count=10)
        assert batch.events == sent
        assert stream.backlog() == 5

    def test_nothing_to_read_is_an_empty_batch(self, stream: EventStream) -> None:
        assert stream.read(consumer="c1", max_count=10).events == []

    def test_read_honours_max_count(self, stream: EventStream) -> None:
        for _ in range(7):  # one event a publish, as requests publish (Redis counts a read in publishes)
            stream.publish([event()])
        first = stream.read(consumer="c1", max_count=3)
        second = stream.read(consumer="c1", max_count=10)
        assert len(first.events) == 3
        assert len(second.events) == 4
        assert not set(ids(first.events)) & set(ids(second.events))

    def test_acked_events_are_gone(self, stream: EventStream) -> None:
        stream.publish([event(), event()])
        batch = stream.read(consumer="c1", max_count=10)
        stream.ack(batch)
        assert stream.backlog() == 0
        time.sleep(IDLE + 0.1)
        assert stream.read(consumer="c2", max_count=10).events == []

    def test_unacked_events_go_to_another_consumer_once_idle(self, stream: EventStream) -> None:
        sent = [event(), event()]
        stream.publish(sent)
        stream.read(consumer="dead", max_count=10)  # taken, never acked
        assert stream.read(consumer="alive", max_count=10).events == []
        time.sleep(IDLE + 0.1)
        again = stream.read(consumer="alive", max_count=10)
        assert ids(again.events) == ids(sent)
        stream.ack(again)
        assert stream.backlog() == 0

    def test_concurrent_publishers_lose_nothing(self, stream: EventStream) -> None:
        sent: list[Event] = []
        lock = threading.Lock()

        def publish(n: int) -> None:
            for _ in range(n):
                e = event()
                stream.publish([e])
                with lock:
                    sent.append(e)

        threads = [threading.Thread(target=publish, args=(25,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = read_all(stream)
        assert sorted(ids(got)) == sorted(ids(sent))
        assert len(got) == 200

    def test_events_round_trip_every_field(self, stream: EventStream) -> None:
        full = event(
            "load_fail",
            error_class="timeout",
            load_ms=1234,
            bytes=99,
            reason="",
            link_id="abc",
            course="c1",
            resource_link="r1",
            bot=True,
            version_id=str(uuid.uuid4()),
        )
        stream.publish([full])
        assert stream.read(consumer="c1").events == [full]

    def test_the_oldest_event_not_yet_acked_dates_the_ingest_lag(
        self, stream: EventStream, publish_at: PublishAt
    ) -> None:
        assert stream.oldest_accepted_at() is None
        publish_at(ACCEPTED, [event()])
        publish_at(ACCEPTED + timedelta(seconds=90), [event(), event()])
        publish_at(ACCEPTED + timedelta(seconds=300), [event()])
        assert stream.oldest_accepted_at() == ACCEPTED
        taken = stream.read(consumer="c1", max_count=1)
        assert stream.oldest_accepted_at() == ACCEPTED  # read but not acked: still waiting (pending)
        stream.ack(taken)
        assert stream.oldest_accepted_at() == ACCEPTED + timedelta(seconds=90)  # never read yet (undelivered)
        rest = stream.read(consumer="c1", max_count=10)
        assert len(rest.events) == 3
        stream.ack(rest)
        assert stream.oldest_accepted_at() is None
        publish_at(ACCEPTED + timedelta(seconds=900), [event()])  # after a quiet spell: only the new event counts
        assert stream.oldest_accepted_at() == ACCEPTED + timedelta(seconds=900)


class DurableEventStreamContract(EventStreamContract):
    """What survives the process: backends that keep events outside it also supply `reopen`."""

    def test_unacked_events_survive_a_restart(self, stream: EventStream, reopen: Reopen) -> None:
        sent = [event(), event(), event()]
        for one in sent:
            stream.publish([one])
        first = stream.read(consumer="c1", max_count=1)
        stream.ack(first)
        stream.read(consumer="c1", max_count=10)  # read, not acked: the process dies
        stream.close()
        time.sleep(IDLE + 0.1)
        fresh = reopen()
        assert ids(read_all(fresh, "c2")) == ids(sent[1:])
        fresh.close()

    def test_events_left_by_a_dead_process_keep_their_age(
        self, stream: EventStream, reopen: Reopen, publish_at: PublishAt
    ) -> None:
        # Accepted at ACCEPTED; the event itself happened 5 s earlier (the spool dates leftovers by it).
        publish_at(ACCEPTED, [event(ts=ACCEPTED - timedelta(seconds=5))])
        stream.close()
        fresh = reopen()
        oldest = fresh.oldest_accepted_at()
        assert oldest is not None
        assert ACCEPTED - timedelta(seconds=5) <= oldest <= ACCEPTED
        fresh.close()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(ACCEPTED - timedelta(hours=1))


def publish_by_clock(stream: EventStream, clock: MovableClock) -> PublishAt:
    def publish_at(when: datetime, events: Sequence[Event]) -> None:
        clock.advance((when - clock.now()).total_seconds())
        stream.publish(events)

    return publish_at


class TestMemory(EventStreamContract):
    @pytest.fixture
    def stream(self, clock: MovableClock) -> MemoryEventStream:
        return MemoryEventStream(claim_idle_seconds=IDLE, clock=clock)

    @pytest.fixture
    def publish_at(self, stream: EventStream, clock: MovableClock) -> PublishAt:
        return publish_by_clock(stream, clock)


class TestSpool(DurableEventStreamContract):
    @pytest.fixture
    def reopen(self, tmp_path: Path, clock: MovableClock) -> Reopen:
        return lambda: SpoolEventStream(
            tmp_path / "events", fsync_ms=5, claim_idle_seconds=IDLE, segment_bytes=4096, clock=clock
        )

    @pytest.fixture
    def stream(self, reopen: Reopen) -> Iterator[EventStream]:
        stream = reopen()
        yield stream
        stream.close()

    @pytest.fixture
    def publish_at(self, stream: EventStream, clock: MovableClock) -> PublishAt:
        return publish_by_clock(stream, clock)

    def test_segments_rotate_and_consumed_ones_are_deleted(self, stream: EventStream, tmp_path: Path) -> None:
        for _ in range(80):  # ~40 KiB: several 4 KiB segments
            stream.publish([event()])
        slot = tmp_path / "events" / "0"
        assert len(list(slot.glob("seg-*.jsonl"))) > 3
        got = 0
        while (batch := stream.read(consumer="c1", max_count=30)).events:
            got += len(batch.events)
            stream.ack(batch)
        assert got == 80
        assert len(list(slot.glob("seg-*.jsonl"))) <= 2  # the last consumed one and the one being written

    def test_restarts_leave_no_empty_segments(self, reopen: Reopen, tmp_path: Path) -> None:
        slot = tmp_path / "events" / "0"
        kept = event()
        for round_ in range(8):
            stream = reopen()
            if round_ == 2:
                stream.publish([kept])
            stream.backlog()  # opens the slot, as serve does at start
            stream.close()
        segments = list(slot.glob("seg-*.jsonl"))
        assert [p.stat().st_size > 0 for p in segments] == [True]  # the one holding an unread event
        stream = reopen()
        stream.publish([late := event()])
        batch = stream.read(consumer="c1", max_count=10)
        assert ids(batch.events) == [kept.id, late.id]
        stream.ack(batch)
        stream.close()
        stream = reopen()
        stream.publish([last := event()])  # resumes after a committed segment that is gone
        assert ids(read_all(stream)) == [last.id]
        stream.close()

    def test_a_torn_last_line_is_skipped_after_a_crash(self, reopen: Reopen, tmp_path: Path) -> None:
        stream = reopen()
        good = [event(), event()]
        stream.publish(good)
        stream.close()
        segment = sorted((tmp_path / "events" / "0").glob("seg-*.jsonl"))[-1]
        with open(segment, "ab") as handle:
            handle.write(b'{"id": "half a line')  # the crash hit mid-write: its publish never returned
        fresh = reopen()
        fresh.publish([late := event()])
        assert ids(read_all(fresh)) == [*ids(good), late.id]
        fresh.close()

    def test_reads_in_pieces_lose_and_repeat_nothing(
        self, stream: EventStream, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Reads are sized by an estimate per line: lines far longer than it, and batches crossing
        # segments, must still come back whole, in order, each once.
        monkeypatch.setattr("studyshelf.events.spool._READ_BYTES_PER_LINE", 64)
        sent = [event(viewer=f"v{i}", course="c" * (i % 7) * 300) for i in range(60)]
        for i in range(0, 60, 4):
            stream.publish(sent[i : i + 4])
        got: list[Event] = []
        for size in (1, 2, 5, 13, 100):
            batch = stream.read(consumer="c1", max_count=size)
            assert len(batch.events) == min(size, 60 - len(got))
            got += batch.events
            stream.ack(batch)
        got += read_all(stream)
        assert ids(got) == ids(sent)

    def test_a_second_process_takes_another_slot(self, stream: EventStream, reopen: Reopen) -> None:
        stream.publish([event()])
        other = reopen()
        other.publish([event()])
        assert isinstance(other, SpoolEventStream)
        assert other.directory.name == "1"
        assert len(read_all(stream)) == 1
        assert len(read_all(other)) == 1
        other.close()


class TestRedis(DurableEventStreamContract):
    @pytest.fixture
    def reopen(self) -> Iterator[Reopen]:
        require_service(redis_available(), "Redis")
        name = f"studyshelf:test:{uuid.uuid4().hex}"
        yield lambda: RedisStreamsEventStream(REDIS_URL, stream=name, claim_idle_seconds=IDLE)
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(name)
        client.close()

    @pytest.fixture
    def stream(self, reopen: Reopen) -> Iterator[EventStream]:
        stream = reopen()
        yield stream
        stream.close()

    @pytest.fixture
    def publish_at(self, stream: EventStream) -> PublishAt:
        """Redis dates an entry by its id (the server's time of XADD): write the entry as `publish` does, with the
        id of that time (a fresh stream, times rising)."""
        assert isinstance(stream, RedisStreamsEventStream)

        def publish_at(when: datetime, events: Sequence[Event]) -> None:
            stream.oldest_accepted_at()  # makes the group, as a first publish does
            entry_id = f"{int(when.timestamp() * 1000)}-0"
            stream.client.xadd(stream.stream, {"e": encode_lines(events), "n": len(events)}, id=entry_id)
            stream.client.incrby(stream.counter, len(events))

        return publish_at

    def test_a_publish_is_one_entry_and_the_backlog_counts_events(self, stream: EventStream) -> None:
        assert isinstance(stream, RedisStreamsEventStream)
        many = [event(viewer=f"v{i}") for i in range(ENTRY_EVENTS + 5)]
        stream.publish(many)  # two entries: ENTRY_EVENTS and 5
        stream.publish([single := event()])
        assert stream.client.xlen(stream.stream) == 3
        assert stream.backlog() == ENTRY_EVENTS + 6
        first = stream.read(consumer="c1", max_count=1)
        assert ids(first.events) == ids(many[:ENTRY_EVENTS])  # an entry is never split
        rest = stream.read(consumer="c1", max_count=10)
        assert ids(rest.events) == [*ids(many[ENTRY_EVENTS:]), single.id]
        stream.ack(first)
        stream.ack(first)  # acked again (a worker that took it over): counted once
        assert stream.backlog() == 6
        stream.ack(rest)
        assert stream.backlog() == 0
        assert stream.client.xlen(stream.stream) == 0
