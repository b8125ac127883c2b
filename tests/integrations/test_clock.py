"""gateway/integrations/clock.py: which statuses get the gateway's time, and what is rejected."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from gateway.config import MqttSection
from gateway.integrations.clock import GatewayClock, time_command


def make_clock(**kw: object) -> GatewayClock:
    return GatewayClock(MqttSection(topic_prefix="p"), client_id="c",
                        registry=CollectorRegistry(), **kw)  # type: ignore[arg-type]


def test_online_status_is_answered_once_per_interval() -> None:
    clock = make_clock(min_interval_s=60.0)
    online = json.dumps({"state": "online", "boot": 1}).encode()
    assert clock.answer_to("p/dev1/status", online) == "dev1"
    assert clock.answer_to("p/dev1/status", online) is None  # within the interval
    assert clock.answer_to("p/dev2/status", online) == "dev2"
    assert clock.answer_to("p/dev3/status", b'{"state": "offline"}') is None


def test_unreadable_status_is_rejected_with_its_reason_and_counted() -> None:
    clock = make_clock()
    assert clock.answer_to("p/dev1/status", b"{not json") is None
    assert "'p/dev1/status'" in (clock.last_error or "")
    assert clock.answer_to("p/dev1/status", b"[1, 2]") is None
    assert clock.last_error == "status on 'p/dev1/status' is list, not an object"
    assert clock.answer_to("other/dev1/status", b"{}") is None
    assert "'other/dev1/status'" in (clock.last_error or "")
    rejected = clock.metrics.rejected
    assert rejected.labels(reason="unreadable")._value.get() == 2
    assert rejected.labels(reason="not_object")._value.get() == 1


def test_time_command_is_what_the_board_reads() -> None:
    assert json.loads(time_command(1796123569.7)) == {"cmd": "time", "t": 1796123569}
