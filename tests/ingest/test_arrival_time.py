"""A board whose clock is not set yet (no NTP, no time from the gateway yet) sends
t = 0; the ingest stamps its readings with the arrival time, spaced by the period."""

from __future__ import annotations

from gateway.store import Changes
from shared.codec import Batch, encode_binary
from tests.ingest.test_validate import validator


def stamps(t: int, period_ms: int | None, recv: float) -> list[float]:
    changes = Changes()
    payload = encode_binary(Batch(1, 0, t, ["temp"], [[20.0], [20.5], [21.0]],
                                  period_ms=period_ms))
    validator().add("p/dev1/data", payload, recv, changes)
    return [row[3] for row in changes.rows[1]]


def test_readings_without_time_are_stamped_on_arrival() -> None:
    # the last reading arrived now, the earlier ones a period apart before it
    assert stamps(0, 2000, 1_800_000_000.0) == [1_799_999_996.0, 1_799_999_998.0,
                                                1_800_000_000.0]


def test_readings_with_the_boards_time_keep_it() -> None:
    assert stamps(1_790_000_000, 1000, 1_800_000_000.0) == [1_790_000_000.0,
                                                            1_790_000_001.0,
                                                            1_790_000_002.0]
