"""AWS provider: import cost of handlers.aws against boto3 alone, per-request overhead of the
Lambda handler (event mapping + core + adapter) against the same boto3 call made directly on the
same moto server, and the size of the deployment zip.

    python -m bench aws
"""

from __future__ import annotations

import importlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import Section, import_time
from emulators.base import REPO_ROOT

CALLS = 300  # per side and operation
IMPORT_ROUNDS = 21


def run(report: Section) -> None:
    _import_cost(report)
    _request_overhead(report)
    _package_size(report)


# -- import --------------------------------------------------------------------------------------


def _import_cost(report: Section) -> None:
    # As deployed today the zip carries sources only, so our modules compile at every cold start
    # (boto3 in the Lambda runtime ships compiled). PYTHONDONTWRITEBYTECODE=1 reproduces that.
    cold = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    boto3_s, handler_s = _interleaved_import_times(cold)
    report.figure("import boto3 (fresh interpreter)", boto3_s * 1000, "ms")
    report.figure("import handlers.aws, sources compiled at import", handler_s * 1000, "ms")
    report.figure("ratio handlers.aws / boto3 (sources only)", handler_s / boto3_s, "x", "<= 1.15")
    # With bytecode shipped (or cached), import costs only loading.
    with tempfile.TemporaryDirectory() as prefix:
        warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        warm["PYTHONPYCACHEPREFIX"] = prefix
        boto3_s, handler_s = _interleaved_import_times(warm)
    report.figure("import handlers.aws, bytecode present", handler_s * 1000, "ms")
    report.figure("ratio handlers.aws / boto3 (bytecode present)", handler_s / boto3_s, "x", "<= 1.15")


def _interleaved_import_times(env: dict[str, str], rounds: int = IMPORT_ROUNDS) -> tuple[float, float]:
    """Median seconds of ``import boto3`` and ``import handlers.aws``, each in a fresh
    interpreter, alternating the two so that load from other processes hits both alike."""
    import_time("import handlers.aws", repeat=1, env=env)  # warm file caches (and bytecode caches)
    boto3_runs, handler_runs = [], []
    for _ in range(rounds):
        boto3_runs.append(import_time("import boto3", repeat=1, env=env))
        handler_runs.append(import_time("import handlers.aws", repeat=1, env=env))
    return statistics.median(boto3_runs), statistics.median(handler_runs)


# -- per-request overhead ------------------------------------------------------------------------


def _request_overhead(report: Section) -> None:
    from adapters.aws.table import create_table, message_to_item
    from core.model import Message, Version, new_message_id
    from emulators.moto import EMULATOR_ENV, MotoServer
    from runtime.aws import LambdaContext, http_event

    with MotoServer() as moto:
        os.environ.update(EMULATOR_ENV)
        os.environ.update(
            OVERCAST_DYNAMODB_TABLE="bench",
            OVERCAST_DYNAMODB_ENDPOINT=moto.url,
            OVERCAST_PEERS="[]",
            OVERCAST_LOG_LEVEL="INFO",  # production level: the request log line is part of the cost
        )
        handler = importlib.import_module("handlers.aws")
        builds = []
        for _ in range(5):  # what the first invocation of a fresh environment adds: client + app
            started = time.perf_counter()
            handler.build()
            builds.append((time.perf_counter() - started) * 1000)
        report.figure("first-invocation build (boto3 client + app), in process", statistics.median(builds), "ms")
        handler.reset()
        real_stderr, sys.stderr = sys.stderr, io.StringIO()  # the log handler formats, nobody reads
        try:
            overcast = handler.overcast()
            client = overcast.store.client
            create_table(client, "bench")
            ctx = LambdaContext("http", 29)
            counter = iter(range(10**9))
            body = json.dumps({"author": "ada", "text": "Hello London"}).encode()
            headers = [("content-type", "application/json")]

            def handler_post() -> None:
                event = http_event("POST", "/channels/bench/messages", headers, body, "api.example.com", "127.0.0.1")
                assert handler.http(event, ctx)["statusCode"] == 201

            def direct_post() -> None:
                now = int(time.time() * 1000)
                message = Message(
                    "bench", new_message_id(now), "ada", "Hello London", now, Version(now, next(counter), "aws")
                )
                client.put_item(
                    TableName="bench", Item=message_to_item(message), ConditionExpression="attribute_not_exists(pk)"
                )

            handler_post()
            some = overcast.store.list("bench", 1).items[0]
            get_path = f"/channels/bench/messages/{some.id}"

            def handler_get() -> None:
                event = http_event("GET", get_path, [], b"", "api.example.com", "127.0.0.1")
                assert handler.http(event, ctx)["statusCode"] == 200

            def direct_get() -> None:
                key = {"pk": {"S": "bench"}, "sk": {"S": some.id}}
                assert "Item" in client.get_item(TableName="bench", Key=key, ConsistentRead=True)

            def handler_list() -> None:
                event = http_event("GET", "/channels/bench/messages?limit=20", [], b"", "api.example.com", "127.0.0.1")
                assert handler.http(event, ctx)["statusCode"] == 200

            def direct_list() -> None:
                client.query(
                    TableName="bench",
                    IndexName="by_sort_key",
                    KeyConditionExpression="#pk = :pk",
                    ExpressionAttributeNames={"#pk": "pk"},
                    ExpressionAttributeValues={":pk": {"S": "bench"}},
                    ScanIndexForward=False,
                    ConsistentRead=True,
                    Limit=21,
                )

            for _ in range(30):  # 60+ items so a 20-item page is full
                direct_post()
            for name, ours, direct in (
                ("POST message (conditional PutItem)", handler_post, direct_post),
                ("GET message (consistent GetItem)", handler_get, direct_get),
                ("GET listing limit=20 (Query on LSI)", handler_list, direct_list),
            ):
                ours_ms, direct_ms = _paired(ours, direct)
                report.figure(f"{name}: handler + core + adapter", ours_ms, "ms/req")
                report.figure(f"{name}: boto3 call alone", direct_ms, "ms/req")
                report.figure(f"{name}: ratio", ours_ms / direct_ms, "x", "<= 1.10")
        finally:
            sys.stderr = real_stderr
            handler.reset()


def _paired(ours: Callable[[], Any], direct: Callable[[], Any]) -> tuple[float, float]:
    """Median ms per call of each side, calls strictly alternating (after a warm-up), so load
    from other processes on a shared machine falls on both sides alike."""
    for _ in range(5):
        ours()
        direct()
    ours_ms: list[float] = []
    direct_ms: list[float] = []
    for _ in range(CALLS):
        for fn, sink in ((ours, ours_ms), (direct, direct_ms)):
            started = time.perf_counter()
            fn()
            sink.append((time.perf_counter() - started) * 1000)
    return statistics.median(ours_ms), statistics.median(direct_ms)


# -- package -------------------------------------------------------------------------------------


def _package_size(report: Section) -> None:
    zip_path = package_zip()
    report.figure("deployment zip (sls package)", round(zip_path.stat().st_size / 1024, 1), "KiB")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        unpacked = sum(info.file_size for info in archive.infolist())
    report.figure("deployment zip files", len(names), "files")
    report.figure("deployment zip unpacked", round(unpacked / 1024, 1), "KiB")


def package_zip() -> Path:
    """Package serverless.aws.yml offline (tools.packaging, else the CLI) and return the zip,
    kept under .bench/aws-package."""
    out = REPO_ROOT / ".bench" / "aws-package"
    try:
        from tools.packaging import package
    except ImportError:  # the toolchain module is not there: run the CLI directly
        shutil.rmtree(out, ignore_errors=True)
        sls = REPO_ROOT / "node_modules" / ".bin" / "sls"
        command = [str(sls), "package", "--config", "serverless.aws.yml", "--package", str(out)]
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    else:
        package("aws", out)
    zips = sorted(out.glob("*.zip"))
    if not zips:
        raise RuntimeError(f"no zip in {out}")
    return zips[0]
