"""Google Cloud provider: import cost of handlers.gcp, and what the adapter + core add to a
Firestore round trip (both against the same local Firestore emulator, interleaved)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.report import Section, import_time, paired, report_paired
from core.model import Message, Version, new_message_id
from emulators.firestore import FirestoreEmulator

ROUNDS = 400
PAIRED_ROUNDS = 200
IMPORT_ROUNDS = 12


def run(report: Section) -> None:
    # bench.report.import_time's method (a fresh interpreter per sample, import timed inside
    # it), with the two statements alternated rather than run one after the other.
    handler, sdk = "import handlers.gcp", "import google.cloud.firestore"
    import_time(handler, repeat=1), import_time(sdk, repeat=1)  # warm the file cache
    handler_s, sdk_s = _interleaved(lambda: handler, lambda: sdk, IMPORT_ROUNDS, measure=lambda fn: _import_once(fn()))
    report.figure("import handlers.gcp (fresh interpreter)", handler_s * 1000, "ms")
    report.figure("import google.cloud.firestore alone", sdk_s * 1000, "ms")
    report.figure("import ratio handlers.gcp / firestore SDK", handler_s / sdk_s, "x", "<= 1.15")

    import handlers.gcp

    with FirestoreEmulator() as emulator:
        client = emulator.client()
        overcast = handlers.gcp.build(
            {"OVERCAST_LOG_LEVEL": "INFO", "OVERCAST_ORIGIN": "gcp", "OVERCAST_AUTH_DISABLED": "true"}, client=client
        )  # token verification is measured on its own: bench_auth
        service = overcast.service
        messages = client.collection("channels").document("bench").collection("messages")
        direct_ids: list[str] = []

        # The direct side writes the very record the service would (same fields, same indexes),
        # built before the clock starts.
        records = iter([_record(overcast.clock.tick()) for _ in range(ROUNDS + 40)])

        def direct_create() -> None:
            record = next(records)
            messages.document(record["id"]).create(record)
            direct_ids.append(record["id"])

        overcast_ids: list[str] = []

        def overcast_post() -> None:
            overcast_ids.append(service.post("bench", "ada", "Hello").message.id)

        for _ in range(20):  # warm the channel, the JIT of the emulator, both code paths
            direct_create()
            overcast_post()
        create_direct, create_overcast = _interleaved(direct_create, overcast_post, ROUNDS)
        report.figure("direct DocumentReference.create() median", create_direct * 1000, "ms")
        report.figure("MessageService.post() → FirestoreMessageStore median", create_overcast * 1000, "ms")
        report.figure(
            "create overhead ratio (adapter + core / direct)", create_overcast / create_direct, "x", "<= 1.10"
        )

        get_direct, get_overcast = _interleaved(
            lambda: messages.document(direct_ids[0]).get(),
            lambda: service.get("bench", overcast_ids[0]),
            ROUNDS,
        )
        report.figure("direct DocumentReference.get() median", get_direct * 1000, "ms")
        report.figure("MessageService.get() → FirestoreMessageStore median", get_overcast * 1000, "ms")
        report.figure("get overhead ratio (adapter + core / direct)", get_overcast / get_direct, "x", "<= 1.10")
        _app_path(report, overcast, messages, direct_ids[0], overcast_ids[0])
        overcast.store.close()
        client.close()


def _app_path(report: Section, overcast: Any, messages: Any, direct_id: str, known_id: str) -> None:
    """The whole request after the Functions Framework's event mapping: HttpApp (routing,
    validation, JSON, the INFO request line) + core + adapter, against the bare SDK call."""
    import os

    from google.api_core import retry as gretry

    from bench.single_pass_reference import build_gcp_get as build_single_pass_get
    from core.http import Request

    app = overcast.app
    records = iter([_record(overcast.clock.tick()) for _ in range(PAIRED_ROUNDS + 20)])
    # The same SDK operations the store issues: a timeout and a short transient-error retry on
    # every call (as a careful caller sets them: the library's default retries for 60 s), and a
    # read that takes the document's data out of the snapshot (to_dict), which any reader needs.
    retry = gretry.Retry(predicate=gretry.if_transient_error, initial=0.05, maximum=1.0, multiplier=2.0, timeout=5.0)
    # Deployed, every request carries the platform's trace header, and the mapping
    # (adapters.gcp.events.to_request) makes its trace id the request id: the app takes it as
    # it is, rather than making one up from os.urandom as it must for a request without one.
    trace = "105445aa7843bc8bf206b12000100000"
    platform = {"x-cloud-trace-context": f"{trace}/1;o=1", "function-execution-id": "c0ffee12abcd"}
    post = Request(
        "POST",
        "/channels/bench/messages",
        {},
        {**platform, "content-type": "application/json"},
        b'{"author": "ada", "text": "Hello"}',
        request_id=trace,
    )
    get = Request("GET", f"/channels/bench/messages/{known_id}", {}, dict(platform), b"", request_id=trace)
    single_pass = build_single_pass_get(app, overcast.store)

    def direct_create() -> None:
        record = next(records)
        messages.document(record["id"]).create(record, retry=retry, timeout=5.0)

    def direct_get() -> None:
        assert messages.document(direct_id).get(retry=retry, timeout=5.0).to_dict()

    def app_post() -> None:
        assert app.handle(post).status == 201

    def app_get() -> None:
        assert app.handle(get).status == 200

    def single_pass_get() -> None:
        assert single_pass(get)[1] == 200

    report.method(
        f"per request: HttpApp.handle at INFO (log lines written to /dev/null; requests carry the platform's "
        f"trace id, as deployed) vs the bare SDK call with the store's timeout and retry (create; get + "
        f"to_dict), {PAIRED_ROUNDS} each, A-B/B-A turns; client CPU = this process's time"
    )
    real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w", buffering=1)  # noqa: SIM115
    try:
        answer = app.handle(get)
        if single_pass(get) != (answer.body, answer.status, answer.headers):
            raise AssertionError("the single-pass reference does not answer what HttpApp.handle answers")
        for op, ours, base in (
            ("create", app_post, direct_create),
            ("get", app_get, direct_get),
        ):
            result = paired(ours, base, PAIRED_ROUNDS, warmup=10)
            report_paired(report, f"{op} via HttpApp", "app + core + adapter", "SDK call alone", result)
        report.method(
            "reference: the same GET in one function (bench/single_pass_reference.py: every check, the same "
            "leaf functions and access line, no Response, service or store port), checked to answer "
            "HttpApp.handle's bytes first"
        )
        result = paired(single_pass_get, direct_get, PAIRED_ROUNDS, warmup=10)
        report.figure("get: client CPU ratio, single pass (same checks, no layers)", result.cpu_ratio, "x")
    finally:
        sys.stderr.close()
        sys.stderr = real_stderr


def _record(version: Version) -> dict[str, Any]:
    message = Message("bench", new_message_id(version.physical_ms), "ada", "Hello", version.physical_ms, version)
    return message.to_record()


def _interleaved(
    a: Callable[[], Any], b: Callable[[], Any], rounds: int, measure: Callable[[Callable[[], Any]], float] | None = None
) -> tuple[float, float]:
    """Median of a and of b, run in A-B-B-A order so load from other processes on a shared
    machine (and any first/second position effect) hits both sides alike. ``measure`` returns
    one sample in seconds (default: wall time of one call)."""
    sample = measure or _wall_time
    times_a: list[float] = []
    times_b: list[float] = []
    for i in range(rounds):
        order = ((a, times_a), (b, times_b)) if i % 2 == 0 else ((b, times_b), (a, times_a))
        for fn, times in order:
            times.append(sample(fn))
    return statistics.median(times_a), statistics.median(times_b)


def _import_once(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _wall_time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started
