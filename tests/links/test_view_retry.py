"""A view that the proxy retries on another instance (the first died after recording it) is counted once.

Behind the reference nginx every request carries the proxy's X-Request-ID and X-Request-Start; a retry carries
the same two, so both instances give the view the same event id and time (delivery/viewing.py).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from studyshelf.app import create_app
from studyshelf.core.clock import utcnow
from studyshelf.settings import Settings
from studyshelf.warehouse import SummaryQuery
from studyshelf.web.security import proxied_request
from tests.analytics.conftest import CHROME, drain
from tests.conftest import Member, World, make_settings
from tests.library.support import uploaded
from tests.links.support import EMBEDDED, create_link, link_path

PROXY = ("127.0.0.1", 40000)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, trusted_proxies=["127.0.0.1/32"])


def _from_proxy(request_id: str, started: float) -> dict[str, str]:
    return {**EMBEDDED, "user-agent": CHROME, "x-request-id": request_id, "x-request-start": f"t={started:.3f}"}


def _views(world: World) -> int:
    drain(world.services)
    now = utcnow()
    query = SummaryQuery(start=now.replace(year=now.year - 1), end=now.replace(year=now.year + 1), include_bots=True)
    return world.services.warehouse.summary(query).totals.views


def test_a_view_retried_on_another_instance_is_counted_once(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"lecture notes")
    limited = link_path(create_link(owner, file["id"], max_views=2))
    unlimited = link_path(create_link(owner, file["id"]))
    first = TestClient(world.app, base_url="http://testserver", client=PROXY)
    second = TestClient(create_app(services=world.services), base_url="http://testserver", client=PROXY)

    for path in (limited, unlimited):
        retried = _from_proxy(uuid.uuid4().hex, time.time())
        assert first.get(path, headers=retried).status_code == 200
        assert second.get(path, headers=retried).status_code == 200  # the same request, again: no second view

    assert first.get(limited, headers=_from_proxy(uuid.uuid4().hex, time.time())).status_code == 200
    assert second.get(limited, headers=_from_proxy(uuid.uuid4().hex, time.time())).status_code == 403  # limit 2
    assert _views(world) == 3


def test_proxy_request_ids_count_only_from_a_trusted_proxy_with_a_believable_time() -> None:
    now = time.time()
    headers = [(b"x-request-id", b"f" * 32), (b"x-request-start", f"t={now:.3f}".encode())]
    assert proxied_request({"client": PROXY, "headers": headers}, ["127.0.0.1/32"]) == ("f" * 32, round(now * 1000))
    assert proxied_request({"client": ("203.0.113.9", 1), "headers": headers}, ["127.0.0.1/32"]) is None
    stale = [(b"x-request-id", b"f" * 32), (b"x-request-start", f"t={now - 3600:.3f}".encode())]
    assert proxied_request({"client": PROXY, "headers": stale}, ["127.0.0.1/32"]) is None
    short = [(b"x-request-id", b"abc"), (b"x-request-start", f"t={now:.3f}".encode())]
    assert proxied_request({"client": PROXY, "headers": short}, ["127.0.0.1/32"]) is None


def test_an_untrusted_client_cannot_merge_views_by_repeating_a_request_id(world: World, owner: Member) -> None:
    file = uploaded(owner, owner.root_folder_id, "notes.txt", b"lecture notes")
    path = link_path(create_link(owner, file["id"]))
    learner = TestClient(world.app, base_url="http://testserver", client=("203.0.113.9", 1))
    same = _from_proxy("e" * 32, time.time())
    assert [learner.get(path, headers=same).status_code for _ in range(2)] == [200, 200]
    assert _views(world) == 2
