"""OpenWhisk + Cloudant figures: what the adapter and core cost over the SDK alone.

- import: ``import handlers.openwhisk`` (a cold container's first import) vs ``ibmcloudant`` alone.
- per request, on pouchdb-server over loopback, interleaved A-B so both see the same machine load:
  a web action GET of one message through ``handlers.openwhisk.http`` (params mapping, routing,
  store read, JSON) vs the bare ``get_document`` it makes; a put_if_newer (read + revision-checked
  PUT) vs a bare PUT with the revision.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.report import Section, import_time, paired, report_paired


def run(report: Section) -> None:
    handler_s = import_time("import handlers.openwhisk")
    sdk_s = import_time("import ibmcloudant.cloudant_v1")
    report.figure("import handlers.openwhisk", handler_s * 1000, "ms")
    report.figure("import ibmcloudant.cloudant_v1 alone", sdk_s * 1000, "ms")
    report.figure("handler import / SDK import", handler_s / sdk_s, "x", "<= 1.15")

    import json

    import handlers.openwhisk as action
    from adapters.openwhisk.store import cloudant_client, doc_id, ensure_indexes
    from core.model import Message, Version
    from emulators.pouchdb import PouchDBServer

    server = PouchDBServer().start()
    try:
        client = cloudant_client(server.url)
        ensure_indexes(client, "bench", create_database=True)
        app = action.build(
            {
                "OVERCAST_PEERS": "[]",
                "CLOUDANT_DB": "bench",
                "OVERCAST_LOG_LEVEL": "INFO",
                "OVERCAST_AUTH_DISABLED": "true",
            },
            client=client,
        )
        action.install(app)
        body = json.dumps({"author": "ada", "text": "Hello London"})
        created = action.http(
            {
                "__ow_method": "post",
                "__ow_path": "/channels/london/messages",
                "__ow_headers": {"content-type": "text/plain; charset=utf-8"},
                "__ow_body": body,
            }
        )
        message = json.loads(created["body"])
        params = {"__ow_method": "get", "__ow_path": f"/channels/london/messages/{message['id']}", "__ow_headers": {}}
        ident = doc_id("london", message["id"])

        def via_handler() -> Any:
            assert action.http(params)["statusCode"] == 200

        def direct() -> Any:
            return client.get_document(db="bench", doc_id=ident).get_result()

        report.method(
            "per request: handlers.openwhisk.http (web action params, INFO logging to /dev/null) vs the bare "
            "get_document it makes, 150 each, A-B/B-A turns, __OW_ACTIVATION_ID set as the platform sets it; "
            "client CPU = this process's time"
        )
        real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w", buffering=1)  # noqa: SIM115
        # The platform gives every activation an id (32 hex digits), which becomes the request id.
        activation = os.environ.get("__OW_ACTIVATION_ID")
        os.environ["__OW_ACTIVATION_ID"] = "6c1f0a3e9b2d4e5f8a7b6c5d4e3f2a1b"
        try:
            result = paired(via_handler, direct, 150, warmup=5)
        finally:
            sys.stderr.close()
            sys.stderr = real_stderr
            if activation is None:
                os.environ.pop("__OW_ACTIVATION_ID", None)
            else:
                os.environ["__OW_ACTIVATION_ID"] = activation
        report_paired(report, "web action GET one message", "handler path", "get_document alone", result)
        report.figure("adapter + core overhead per GET (wall)", result.wall_ours - result.wall_base, "ms")

        stored = app.store.get("london", message["id"])
        assert stored is not None
        counter = iter(range(1, 10**6))

        def put_if_newer() -> Any:
            v = stored.version
            assert app.store.put_if_newer(
                Message(**{**stored.__dict__, "version": Version(v.physical_ms + next(counter), 0, v.origin)})
            )

        def bare_put() -> Any:
            doc = client.get_document(db="bench", doc_id=ident).get_result()
            client.put_document(db="bench", doc_id=ident, document=doc)

        put_ms, bare_ms = _interleaved(put_if_newer, bare_put)
        report.figure("put_if_newer p50 (read + revision-checked PUT)", put_ms, "ms")
        report.figure("bare GET + PUT with _rev p50 (SDK alone)", bare_ms, "ms")
    finally:
        action.install(None)
        server.stop()


def _interleaved(a: Callable[[], Any], b: Callable[[], Any], rounds: int = 150) -> tuple[float, float]:
    times: tuple[list[float], list[float]] = ([], [])
    for fn in (a, b) * 5:  # warm both paths
        fn()
    for n in range(rounds):
        order = ((0, a), (1, b)) if n % 2 == 0 else ((1, b), (0, a))
        for slot, fn in order:
            started = time.perf_counter()
            fn()
            times[slot].append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])
