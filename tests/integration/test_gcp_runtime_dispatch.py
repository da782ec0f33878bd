"""runtime.gcp's Eventarc-style delivery: retries with backoff, a bounded number of attempts, and
one stuck delivery not holding up the others."""

from __future__ import annotations

import threading
import time
from collections import Counter

from runtime.gcp import EventDispatcher, cloud_event_headers


def _wait(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_failed_deliveries_are_retried_until_acknowledged() -> None:
    answers = Counter[str]()

    def send(headers: dict[str, str], body: bytes) -> int:
        answers[headers["ce-id"]] += 1
        return 200 if answers[headers["ce-id"]] >= 3 else 500

    dispatcher = EventDispatcher(send, initial_backoff_s=0.01, max_backoff_s=0.05).start()
    try:
        headers = cloud_event_headers("demo-overcast", "(default)", "channels/london/messages/abc")
        dispatcher.submit(headers, b"payload")
        _wait(lambda: dispatcher.delivered == 1)
        assert answers[headers["ce-id"]] == 3 and dispatcher.pending() == 0 and dispatcher.dropped == 0
    finally:
        dispatcher.stop()


def test_attempts_are_bounded_then_the_event_is_dropped() -> None:
    calls = []
    dispatcher = EventDispatcher(lambda h, b: calls.append(1) or 503, max_attempts=4, initial_backoff_s=0.01).start()
    try:
        dispatcher.submit(cloud_event_headers("p", "(default)", "channels/a/messages/b"), b"")
        _wait(lambda: dispatcher.dropped == 1)
        assert len(calls) == 4 and dispatcher.delivered == 0 and dispatcher.pending() == 0
    finally:
        dispatcher.stop()


def test_a_stuck_delivery_does_not_block_the_others() -> None:
    release = threading.Event()

    def send(headers: dict[str, str], body: bytes) -> int:
        if body == b"stuck":
            release.wait(5)
        return 200

    dispatcher = EventDispatcher(send, workers=2).start()
    try:
        dispatcher.submit(cloud_event_headers("p", "(default)", "channels/a/messages/stuck"), b"stuck")
        for i in range(5):
            dispatcher.submit(cloud_event_headers("p", "(default)", f"channels/a/messages/m{i}"), b"ok")
        _wait(lambda: dispatcher.delivered == 5)
        assert dispatcher.pending() == 1
        release.set()
        _wait(lambda: dispatcher.delivered == 6)
    finally:
        release.set()
        dispatcher.stop()


def test_headers_are_eventarc_binary_mode_attributes() -> None:
    headers = cloud_event_headers("demo-overcast", "(default)", "channels/london/messages/abc")
    assert headers["ce-type"] == "google.cloud.firestore.document.v1.written"
    assert headers["ce-source"] == "//firestore.googleapis.com/projects/demo-overcast/databases/(default)"
    assert headers["ce-subject"] == "documents/channels/london/messages/abc"
    assert headers["content-type"] == "application/protobuf" and headers["ce-specversion"] == "1.0"
    assert headers["ce-time"].endswith("Z")
