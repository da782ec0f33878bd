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


def _full_checks(channel, id, author, text, created_ms, version, deleted, request_digest) -> None:
    """The checks every field must pass, written out in full, one after the other: what
    Message's own constructor (a cheap test per field, these as the fallback) must agree with."""
    from core import model

    model.validate_channel(channel)
    model.validate_message_id(id)
    model.validate_record_text("author", author, model.MAX_RECORD_AUTHOR_CHARS)
    model.validate_record_text("text", text, model.MAX_RECORD_TEXT_CHARS)
    if not (isinstance(created_ms, int) and not isinstance(created_ms, bool) and 0 <= created_ms <= 10**13 - 1):
        raise ValidationError("created_ms", code="invalid_record")
    if not isinstance(version, Version) or not isinstance(deleted, bool):
        raise ValidationError("version or deleted", code="invalid_record")
    if not isinstance(request_digest, str) or not model._REQUEST_DIGEST_RE.match(request_digest):
        raise ValidationError("request_digest", code="invalid_record")


class _Text(str):
    pass


texts = st.one_of(
    st.text(max_size=8),  # non-ASCII, NUL, lone surrogates
    st.sampled_from(["", "ada", "a" * 1024, "a" * 1025, "\x00", "\ud800", "é", _Text("ada")]),
    st.none(),
    st.integers(),
)
fields = st.tuples(
    st.one_of(st.sampled_from(["london", "Bad Channel", "a" * 65, "london\n", _Text("london")]), texts),
    st.one_of(st.sampled_from([new_message_id(5), new_message_id(5).upper(), "x" * 26]), texts),
    texts,
    st.one_of(texts, st.sampled_from(["t" * 64_000, "t" * 64_001])),
    st.one_of(st.integers(-1, 10**13 + 1), st.sampled_from([True, 5.0, "5", None])),
    st.sampled_from([Version(5, 0, "aws"), "0000000000005-000000-aws", None]),
    st.sampled_from([False, True, 0, 1, None]),
    st.one_of(st.sampled_from(["", "0" * 32, "0" * 65, "a b", None, 0]), texts),
)


@given(fields)
def test_message_constructor_admits_exactly_what_the_full_checks_admit(values: tuple) -> None:
    try:
        _full_checks(*values)
    except ValidationError as expected:
        with pytest.raises(ValidationError) as raised:
            Message(*values)
        if expected.code != "invalid_record":  # per-field codes are the same; the record-level ones share one
            assert raised.value.code == expected.code
    else:
        message = Message(*values)
        assert tuple(getattr(message, name) for name in Message.__dataclass_fields__) == values
        assert message == Message(*values) and hash(message) == hash(Message(*values))
