import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationError
from core.model import (
    RECORD_FIELDS,
    HybridLogicalClock,
    Message,
    Version,
    decode_cursor,
    encode_cursor,
    idempotent_message_id,
    new_message_id,
    sort_key,
)

versions = st.builds(
    Version,
    st.integers(0, 10**13 - 1),
    st.integers(0, 999_999),
    st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,31}\Z"),
)


@given(versions, versions)
def test_version_string_order_is_version_order(a: Version, b: Version) -> None:
    # Stores compare version strings natively; that must agree with Python's comparison.
    assert (str(a) < str(b)) == (a < b)
    # parse builds without re-running __post_init__: it must still be the same value in every way.
    parsed = Version.parse(str(a))
    assert parsed == a and hash(parsed) == hash(a) and not parsed < a and not a < parsed
    assert (parsed.physical_ms, parsed.counter, parsed.origin, str(parsed)) == (
        a.physical_ms,
        a.counter,
        a.origin,
        str(a),
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1-2-x",
        "0000000000001-000001-",
        "0000000000001-000001-UP",
        "0000000000001-000001-aws\n",
        "00000000000001-000001-aws",
        "0000000000001-0000001-aws",
        "0000000000001-000001--aws",
        "0000000000001-000001-" + "a" * 33,
        None,
        5,
    ],
)
def test_malformed_versions_are_rejected(text: object) -> None:
    with pytest.raises(ValidationError):
        Version.parse(text)  # type: ignore[arg-type]


def test_hlc_is_monotonic_when_the_wall_clock_stalls_or_goes_back() -> None:
    times = iter([1000, 1000, 999, 1001])
    clock = HybridLogicalClock("aws", lambda: next(times))
    issued = [clock.tick() for _ in range(4)]
    assert issued == sorted(issued) and len(set(issued)) == 4
    assert issued[2] == Version(1000, 2, "aws")  # the clock went back: counter carries on
    assert issued[3] == Version(1001, 0, "aws")


def test_hlc_orders_local_writes_after_observed_remote_versions() -> None:
    clock = HybridLogicalClock("azure", lambda: 1000)
    clock.observe(Version(5000, 7, "aws"))  # a peer whose clock runs ahead
    assert clock.tick() > Version(5000, 7, "aws")


def test_hlc_rejects_bad_origin() -> None:
    with pytest.raises(ValidationError):
        HybridLogicalClock("AWS!")


def test_idempotent_ids_are_deterministic_and_channel_scoped() -> None:
    assert idempotent_message_id("london", "k1") == idempotent_message_id("london", "k1")
    assert idempotent_message_id("london", "k1") != idempotent_message_id("portland", "k1")
    assert len(idempotent_message_id("london", "k1")) == 26


def test_new_ids_sort_by_time() -> None:
    assert new_message_id(1_000) < new_message_id(2_000)


def test_cursor_round_trip_and_rejection() -> None:
    key = sort_key(1_700_000_000_000, new_message_id(1))
    assert decode_cursor(encode_cursor(key)) == key
    for bad in ["!!!", encode_cursor("nonsense"), encode_cursor("1700000000000~short")]:
        with pytest.raises(ValidationError) as info:
            decode_cursor(bad)
        assert info.value.code == "invalid_cursor"


def test_record_round_trip_and_validation() -> None:
    message = Message("london", new_message_id(5), "ada", "hi", 5, Version(5, 0, "aws"))
    assert Message.from_record(message.to_record()) == message
    tomb = message.tombstone(Version(6, 0, "azure"))
    assert tomb.deleted and tomb.text == "" and tomb.origin == "azure"
    assert Message.from_record(tomb.to_record()) == tomb
    for broken in [{}, {**message.to_record(), "channel": "Bad Channel"}, {**message.to_record(), "version": "x"}]:
        with pytest.raises(ValidationError):
            Message.from_record(broken)


def test_hlc_does_not_follow_a_peer_clock_far_in_the_future() -> None:
    clock = HybridLogicalClock("azure", lambda: 1_000_000, max_drift_ms=60_000)
    broken_peer = Version(1_000_000 + 3_600_000, 0, "aws")  # an hour ahead
    assert clock.observe(broken_peer) is False
    assert clock.tick().physical_ms == 1_000_000  # local writes keep real time
    assert clock.observe(Version(1_000_000 + 30_000, 4, "aws")) is True  # within the drift bound
    assert clock.tick() > Version(1_000_000 + 30_000, 4, "aws")


def test_hlc_forced_observe_orders_a_write_after_even_a_future_version() -> None:
    clock = HybridLogicalClock("azure", lambda: 1_000_000, max_drift_ms=60_000)
    future = Version(1_000_000 + 3_600_000, 0, "aws")
    assert clock.observe(future, force=True) is True
    assert clock.tick() > future


def test_record_fields_name_every_field_of_a_record_in_order() -> None:
    message = Message("london", new_message_id(5), "ada", "hi", 5, Version(5, 0, "aws"))
    assert tuple(message.to_record()) == RECORD_FIELDS
