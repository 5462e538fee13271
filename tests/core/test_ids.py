"""The one UUIDv7 helper: layout, ordering, and the fast string form agreeing with the UUID."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from studyshelf.core.ids import new_id, uuid7, uuid7_str


@given(unix_ms=st.integers(0, (1 << 48) - 1), rand=st.integers(0, (1 << 80) - 1))
def test_uuid7_layout_and_string_form(unix_ms: int, rand: int) -> None:
    value = uuid7(unix_ms, rand)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == unix_ms
    assert uuid7_str(unix_ms, rand) == str(value)


def test_same_inputs_give_the_same_id() -> None:
    assert uuid7(1_700_000_000_000, 12345) == uuid7(1_700_000_000_000, 12345)


def test_new_ids_are_time_ordered_and_distinct() -> None:
    ids = [new_id() for _ in range(200)]
    assert len(set(ids)) == 200
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)
    assert all(i.version == 7 for i in ids)
