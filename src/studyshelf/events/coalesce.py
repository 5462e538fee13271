"""Publishing from an event loop: the events of every coroutine that asks while one publish runs go out
together in the next, from one worker thread.

A durable publish blocks until the buffer has the events (the spool's fdatasync, Redis's reply), so a
coroutine cannot make it itself; a worker thread per publisher would cost every request a hop to the
threadpool and back. `LoopPublisher` makes one hop per batch instead: a class rush's views, answered on
the event loop (`delivery/viewer.py ViewerFastPath`), share a publish the way the spool's group commit
shares a sync. A publish that fails, fails for every event of its batch (each waiter sees the error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from studyshelf.events.interface import EventStream
from studyshelf.events.schema import Event


class LoopPublisher:
    """Publishes to `stream` for the coroutines of one event loop, one batch (and one worker thread) at a time."""

    def __init__(self, stream: EventStream, loop: asyncio.AbstractEventLoop) -> None:
        self.stream = stream
        self.loop = loop
        self._waiting: list[tuple[Sequence[Event], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def publish(self, events: Sequence[Event]) -> None:
        """Return once the events are in the buffer (as `EventStream.publish`), raising what it raised."""
        if not events:
            return
        published: asyncio.Future[None] = self.loop.create_future()
        self._waiting.append((events, published))
        if self._runner is None:
            self._runner = self.loop.create_task(self._run())
        # Shielded: a request that goes away does not take its batch's publish with it.
        await asyncio.shield(published)

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await run_in_threadpool(self.stream.publish, [event for events, _ in batch for event in events])
                except BaseException as exc:
                    for _, published in batch:
                        if not published.done():
                            published.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled with the loop: nothing more is published
                else:
                    for _, published in batch:
                        if not published.done():
                            published.set_result(None)
        finally:
            self._runner = None
