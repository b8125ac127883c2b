"""Topic builder and parser."""

import pytest

from shared.errors import ProtocolError
from shared.topics import parse_topic, subscription, topic


def test_build_and_parse_are_inverse() -> None:
    name = topic("learnae", "greenhouse-7", "data")
    assert name == "learnae/greenhouse-7/data"
    assert parse_topic(name, "learnae") == ("greenhouse-7", "data")
    assert parse_topic(name.encode(), "learnae") == ("greenhouse-7", "data")


def test_subscription_filter() -> None:
    assert subscription("site/a", "status") == "site/a/+/status"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("other/dev/data", "does not start with 'learnae/'"),
        ("learnae/dev/extra/data", "is not <prefix>/<device>/<kind>"),
        ("learnae/dev/bogus", "topic kind 'bogus' is not one of"),
        ("learnae/Dev/data", "device id 'Dev' has character 'D'"),
        ("learnae//data", "device id '' must be 1 to 32 characters"),
        ("learnae/" + "d" * 33 + "/data", "must be 1 to 32 characters"),
    ],
)
def test_parse_rejects_with_reason(name: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_topic(name, "learnae")
    assert message in str(info.value)


@pytest.mark.parametrize("device", ["a+b", "a#", "a/b", ""])
def test_build_refuses_wildcards_and_slashes(device: str) -> None:
    with pytest.raises(ProtocolError):
        topic("learnae", device, "data")


def test_build_refuses_bad_prefix() -> None:
    with pytest.raises(ProtocolError, match="prefix 'a/#'"):
        topic("a/#", "dev", "data")
