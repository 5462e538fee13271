"""End to end on the scale backends: /v/ views → Redis Streams → the worker → PostgreSQL, and redelivery."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from studyshelf.analytics.ingest import drain
from studyshelf.events.redis_streams import GROUP
from studyshelf.services import Services, build_services
from studyshelf.settings import Settings
from tests.analytics.conftest import CHROME
from tests.analytics.support import REDIS_URL, event, redis_available
from tests.conftest import World, require_service
from tests.conftest import _truncate_all as truncate_all
from tests.contracts.test_warehouse import pg_warehouse_url
from tests.links.support import EMBEDDED, create_link, link_path, visitor
from tests.sharing.support import grant, partnership

pytestmark = pytest.mark.postgres


@pytest.fixture
def scale_services(settings: Settings) -> Iterator[Services]:
    require_service(redis_available(), "Redis")
    stream = f"studyshelf:test:{uuid.uuid4().hex}"
    for url in pg_warehouse_url():
        scaled = settings.model_copy(
            update={
                "redis_url": REDIS_URL,
                "redis_stream": stream,
                "warehouse_url": url,
                "event_claim_idle_seconds": 0.5,
            }
        )
        built = build_services(scaled)
        yield built
        if built.engine.dialect.name == "postgresql":
            truncate_all(built)  # the app database is shared by this worker's tests
        built.events.close()
        built.warehouse.close()
        built.engine.dispose()
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(stream)
    client.close()


def test_views_flow_through_redis_and_the_worker_into_postgres(scale_services: Services) -> None:
    world = World(scale_services)
    p = partnership(world)
    assert grant(p.publisher, p.course["id"], p.partner.id).status_code == 201
    path = link_path(create_link(p.teacher, p.notes["id"], org_id=str(p.partner.id)))
    learner = visitor(p.publisher)
    for _ in range(4):
        assert learner.get(path, headers={**EMBEDDED, "user-agent": CHROME}).status_code == 200
    assert scale_services.events.backlog() == 4

    stop = threading.Event()
    worker = threading.Thread(
        target=drain.run,
        args=(scale_services.events, scale_services.warehouse),
        kwargs={"stop": stop, "consumer": "w1", "block_ms": 100},
    )
    worker.start()
    deadline = time.monotonic() + 20
    while scale_services.events.backlog() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(timeout=10)

    assert scale_services.events.backlog() == 0
    answer = p.student.client.get("/api/v1/analytics/summary", params={"org_id": str(p.partner.id)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["totals"]["views"] == 4
    publisher = p.publisher.client.get(
        "/api/v1/analytics/summary", params={"org_id": str(p.operator.id), "folder": p.course["id"]}
    )
    assert publisher.json()["totals"]["views"] == 4


def test_a_batch_stored_but_not_acked_is_delivered_again_and_counted_once(scale_services: Services) -> None:
    events, warehouse = scale_services.events, scale_services.warehouse
    events.publish([event() for _ in range(50)])
    batch = events.read(consumer="dies-before-ack", max_count=30)
    warehouse.insert(batch.events)  # committed; the worker dies before XACK
    time.sleep(0.6)
    assert drain.drain_all(events, warehouse, consumer="survivor") == 50
    assert warehouse.count() == 50
    assert events.backlog() == 0
    pending = redis.Redis.from_url(REDIS_URL).xpending(scale_services.settings.redis_stream, GROUP)
    assert pending["pending"] == 0
