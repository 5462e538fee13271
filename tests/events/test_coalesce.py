"""Publishing from an event loop (events/coalesce.py): the coroutines that ask while a publish runs share the
next one; every event is in the buffer when its coroutine goes on; a failed publish fails every event of its
batch; a coroutine that goes away does not take its batch's publish with it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from studyshelf.events import Event, EventStreamError
from studyshelf.events.coalesce import LoopPublisher
from studyshelf.events.spool import SpoolEventStream
from tests.analytics.support import event


class GatedStream:
    """A real spool whose publish waits at a gate, so a test decides when each one finishes."""

    def __init__(self, base: Path) -> None:
        self.spool = SpoolEventStream(base)
        self.batches: list[int] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.failure: Exception | None = None

    def publish(self, events: Sequence[Event]) -> None:
        self.started.set()
        assert self.gate.wait(10)
        if self.failure is not None:
            raise self.failure
        self.spool.publish(events)
        self.batches.append(len(events))

    def read_all(self) -> list[str]:
        batch = self.spool.read(consumer="test", max_count=1000)
        return [e.id for e in batch.events]


@pytest.fixture
def stream(tmp_path: Path) -> GatedStream:
    return GatedStream(tmp_path / "spool")


def _events(n: int, prefix: str) -> list[list[Event]]:
    return [[event(id=f"{prefix}-{i}")] for i in range(n)]


async def _started(stream: GatedStream) -> None:
    while not stream.started.is_set():
        await asyncio.sleep(0)  # a worker thread sets it; give the loop back until it has


def test_the_visits_waiting_for_a_publish_share_the_next(stream: GatedStream) -> None:
    async def rush() -> None:
        publisher = LoopPublisher(stream, asyncio.get_running_loop())  # type: ignore[arg-type]
        first = asyncio.create_task(publisher.publish(_events(1, "first")[0]))
        await _started(stream)  # the first publish runs; the next ten arrive meanwhile
        rest = [asyncio.create_task(publisher.publish(events)) for events in _events(10, "rest")]
        await asyncio.sleep(0)
        stream.gate.set()
        await asyncio.gather(first, *rest)

    asyncio.run(rush())
    assert stream.batches == [1, 10]
    assert sorted(stream.read_all()) == sorted(["first-0", *(f"rest-{i}" for i in range(10))])


def test_a_failed_publish_fails_every_event_of_its_batch_and_the_next_batch_goes_on(stream: GatedStream) -> None:
    async def rush() -> list[object]:
        publisher = LoopPublisher(stream, asyncio.get_running_loop())  # type: ignore[arg-type]
        stream.failure = EventStreamError("the buffer is full")
        stream.gate.set()
        failed = await asyncio.gather(
            *(publisher.publish(events) for events in _events(3, "lost")), return_exceptions=True
        )
        stream.failure = None
        await publisher.publish(_events(1, "kept")[0])
        return failed

    failed = asyncio.run(rush())
    assert all(isinstance(outcome, EventStreamError) for outcome in failed), failed
    assert stream.read_all() == ["kept-0"]


def test_a_visit_that_goes_away_leaves_its_batch_published(stream: GatedStream) -> None:
    async def rush() -> None:
        publisher = LoopPublisher(stream, asyncio.get_running_loop())  # type: ignore[arg-type]
        gone = asyncio.create_task(publisher.publish(_events(1, "gone")[0]))
        stays = asyncio.create_task(publisher.publish(_events(1, "stays")[0]))
        await _started(stream)
        gone.cancel()  # the client hung up while its event was being written
        stream.gate.set()
        await stays
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(rush())
    assert sorted(stream.read_all()) == ["gone-0", "stays-0"]


def test_nothing_to_publish_returns_at_once(stream: GatedStream) -> None:
    async def nothing() -> None:
        await LoopPublisher(stream, asyncio.get_running_loop()).publish([])  # type: ignore[arg-type]

    asyncio.run(nothing())
    assert stream.batches == []
    assert not stream.started.is_set()
