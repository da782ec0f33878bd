"""AWS provider: import cost of handlers.aws against the SDK part it imports (botocore.session),
per-request overhead of the Lambda handler (event mapping + core + adapter) against the same
DynamoDB call made directly on the same low-level client and server (DynamoDB Local, which keeps
connections alive as the service does; for reference, the same requests on Powertools'
resolver), and the size of the deployment zip.

    python -m bench aws
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.report import Section, paired, report_paired
from emulators.base import REPO_ROOT

CALLS = 300  # per side and operation
IMPORT_ROUNDS = 21
CACHE_SWEEP_BYTES = 16 << 20  # copied (32 MiB touched): far more than L1/L2, about the L3 of the machine measured


def run(report: Section) -> None:
    _import_cost(report)
    _request_overhead(report)
    _our_code_cpu(report)
    _package_size(report)


# -- import --------------------------------------------------------------------------------------


IMPORTS = {
    "boto3": "import boto3",
    "botocore": "import botocore.session, botocore.config",  # what the adapter imports of the SDK
    "handler": "import handlers.aws",
}
#: Our own layer alone: handlers.aws imported after the SDK is loaded (only the timed part counts).
OUR_CODE = "import handlers.aws"
SDK_FIRST = "import botocore.session, botocore.config"


def _import_cost(report: Section) -> None:
    # Packaged without a Python 3.12 the zip carries sources only, so our modules compile at
    # every cold start, while the SDK in the Lambda runtime ships compiled:
    # PYTHONDONTWRITEBYTECODE=1 with a compiled site-packages reproduces that. Packaged with one
    # (tools/sls/bytecode.js), the zip carries bytecode: the second figure below.
    cold = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    report.method(
        f"import: median of {IMPORT_ROUNDS} fresh interpreters per statement, statements in turns; the base is "
        "what handlers.aws imports of the SDK (botocore.session, botocore.config), not boto3"
    )
    cpu, wall = _interleaved_import_times(cold)
    report.figure("import boto3: CPU time (fresh interpreter, not imported by the handler)", cpu["boto3"] * 1000, "ms")
    report.figure("import botocore.session (the SDK part the adapter uses)", cpu["botocore"] * 1000, "ms")
    report.figure("import handlers.aws (sources compiled at import): CPU", cpu["handler"] * 1000, "ms")
    report.figure("  of which our code (core + adapter + handler): CPU", cpu["ours"] * 1000, "ms")
    report.figure(
        "ratio handlers.aws / botocore.session, sources only (CPU)", cpu["handler"] / cpu["botocore"], "x", "<= 1.15"
    )
    report.figure("ratio handlers.aws / botocore.session, sources only (wall)", wall["handler"] / wall["botocore"], "x")
    # With bytecode present (shipped in the zip, or cached by a long-lived local process).
    with tempfile.TemporaryDirectory() as prefix:
        warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        warm["PYTHONPYCACHEPREFIX"] = prefix
        cpu, wall = _interleaved_import_times(warm)
    report.figure("import handlers.aws, bytecode present: CPU", cpu["handler"] * 1000, "ms")
    report.figure("  of which our code, bytecode present: CPU", cpu["ours"] * 1000, "ms")
    report.figure(
        "ratio handlers.aws / botocore.session, bytecode present (CPU)",
        cpu["handler"] / cpu["botocore"],
        "x",
        "<= 1.15",
    )


def _import_once(statement: str, env: dict[str, str], setup: str = "pass") -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``statement`` in a fresh interpreter, after an untimed
    ``setup``. CPU time is what the import costs; on a shared machine wall time also holds other
    processes' load."""
    code = (
        f"{setup}; import time; c = time.process_time(); w = time.perf_counter(); "
        f"{statement}; print(time.process_time() - c, time.perf_counter() - w)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=REPO_ROOT
    )
    cpu, wall = out.stdout.split()[-2:]
    return float(cpu), float(wall)


def _interleaved_import_times(
    env: dict[str, str], rounds: int = IMPORT_ROUNDS
) -> tuple[dict[str, float], dict[str, float]]:
    """Median CPU and wall seconds of each of IMPORTS, each in a fresh interpreter, taking
    turns so that load from other processes falls on all of them alike."""
    for statement in IMPORTS.values():
        _import_once(statement, env)  # warm file caches (and the bytecode cache, if allowed)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in [*IMPORTS, "ours"]}
    for _ in range(rounds):
        for name, statement in IMPORTS.items():
            runs[name].append(_import_once(statement, env))
        runs["ours"].append(_import_once(OUR_CODE, env, setup=SDK_FIRST))
    cpu = {name: statistics.median(r[0] for r in values) for name, values in runs.items()}
    wall = {name: statistics.median(r[1] for r in values) for name, values in runs.items()}
    return cpu, wall


# -- per-request overhead ------------------------------------------------------------------------


def _request_overhead(report: Section) -> None:
    from adapters.aws.table import create_table, message_to_item
    from bench.powertools_reference import build_handler as build_reference
    from bench.single_pass_reference import build_aws_get as build_single_pass_get
    from core.model import Message, Version, new_message_id
    from emulators.moto import EMULATOR_ENV
    from runtime.aws import LambdaContext, http_event

    server, about_server = _dynamodb_server()
    report.method(f"DynamoDB server: {about_server}")
    with server:
        os.environ.update(EMULATOR_ENV)
        os.environ.update(
            OVERCAST_DYNAMODB_TABLE="bench",
            OVERCAST_DYNAMODB_ENDPOINT=server.url,
            OVERCAST_PEERS="[]",
            OVERCAST_LOG_LEVEL="INFO",  # production level: the request log line is part of the cost
            OVERCAST_AUTH_DISABLED="true",  # token verification is measured on its own: bench_auth
        )
        handler = importlib.import_module("handlers.aws")
        builds = []
        for _ in range(5):  # what the first invocation of a fresh environment adds: client + app
            started = time.perf_counter()
            handler.build()
            builds.append((time.perf_counter() - started) * 1000)
        report.figure("first-invocation build (DynamoDB client + app), in process", statistics.median(builds), "ms")
        handler.reset()
        # The request line is formatted and written (a real write, to /dev/null), as at INFO in Lambda.
        real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w", buffering=1)  # noqa: SIM115
        try:
            overcast = handler.overcast()
            client = overcast.store.client
            create_table(client, "bench")
            ctx = LambdaContext("http", 29)
            counter = iter(range(10**9))
            body = json.dumps({"author": "ada", "text": "Hello London"}).encode()
            headers = [("content-type", "application/json")]

            # API Gateway builds the events, so they are built once, outside the timed calls.
            post_event = http_event("POST", "/channels/bench/messages", headers, body, "api.example.com", "127.0.0.1")

            def handler_post() -> None:
                assert handler.http(post_event, ctx)["statusCode"] == 201

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

            get_event = http_event("GET", get_path, [], b"", "api.example.com", "127.0.0.1")
            list_event = http_event("GET", "/channels/bench/messages?limit=20", [], b"", "api.example.com", "127.0.0.1")

            def handler_get() -> None:
                assert handler.http(get_event, ctx)["statusCode"] == 200

            def direct_get() -> None:
                key = {"pk": {"S": "bench"}, "sk": {"S": some.id}}
                assert "Item" in client.get_item(TableName="bench", Key=key, ConsistentRead=True)

            def handler_list() -> None:
                assert handler.http(list_event, ctx)["statusCode"] == 200

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

            reference = build_reference(client, "bench", new_message_id)
            # Its writes go to a channel of their own: its items are not ours, and the listing reads "bench".
            reference_post_event = {**post_event, "rawPath": "/channels/reference/messages"}

            def reference_post() -> None:
                assert reference(reference_post_event, ctx)["statusCode"] == 201

            def reference_get() -> None:
                assert reference(get_event, ctx)["statusCode"] == 200

            def reference_list() -> None:
                assert reference(list_event, ctx)["statusCode"] == 200

            single_pass = build_single_pass_get(overcast.app, client, "bench")
            # The same answer as the handler's, or its ratio would measure some other work.
            assert single_pass(get_event, ctx)["body"] == handler.http(get_event, ctx)["body"]

            def single_pass_get() -> None:
                assert single_pass(get_event, ctx)["statusCode"] == 200

            for _ in range(30):  # 60+ items so a 20-item page is full
                direct_post()
            report.method(
                f"per request: handlers.aws.http (API Gateway v2 event, INFO logging) vs the same DynamoDB call "
                f"on the same low-level client, {CALLS} each, A-B/B-A turns; client CPU = this process's time"
            )
            report.method(
                "reference: the same requests on Powertools' APIGatewayHttpResolver (bench/powertools_reference.py:"
                " no logger, no validation), paired with the SDK call alone in turns of its own"
            )
            for name, ours, direct, other in (
                ("POST message (conditional PutItem)", handler_post, direct_post, reference_post),
                ("GET message (consistent GetItem)", handler_get, direct_get, reference_get),
                ("GET listing limit=20 (Query on LSI)", handler_list, direct_list, reference_list),
            ):
                report_paired(report, name, "handler path", "SDK call alone", paired(ours, direct, CALLS, warmup=5))
                measured = paired(other, direct, CALLS, warmup=5)
                report.figure(f"{name}: client CPU ratio, Powertools resolver", measured.cpu_ratio, "x")
            report.method(
                "single pass (bench/single_pass_reference.py): the GET with every check the handler makes and the"
                " same leaf functions, in one function without its layers; paired with the SDK call alone in turns"
            )
            measured = paired(single_pass_get, direct_get, CALLS, warmup=5)
            report.figure(
                "GET message: client CPU ratio, single pass (same checks, no layers)", measured.cpu_ratio, "x"
            )
        finally:
            sys.stderr.close()
            sys.stderr = real_stderr
            handler.reset()


def _dynamodb_server() -> tuple[Any, str]:
    """DynamoDB Local where it can run: like the service, it keeps the SDK's connections alive.
    moto server answers HTTP/1.0 and closes every connection, so each SDK call there also pays a
    TCP connect and close that a client of the real service does not: a larger base, which
    makes every ratio look better than it is."""
    from emulators.dynamodb_local import DynamoDBLocal, unavailable_reason
    from emulators.moto import MotoServer

    reason = unavailable_reason()
    if reason is None:
        return DynamoDBLocal(), "DynamoDB Local (keeps connections alive, as the service does)"
    return MotoServer(), f"moto server, one TCP connection per call (the base is inflated): {reason}"


def _our_code_cpu(report: Section, rounds: int = 20, calls: int = 300) -> None:
    """Our layers alone: handlers.aws.http with the DynamoDB client replaced by a stub that
    answers at once, so all CPU is event mapping, core, adapter and the log line; with log lines
    written directly (the default) and through the logging module, in turns."""
    from core import logs
    from runtime.aws import LambdaContext, http_event

    os.environ.update(OVERCAST_LOG_LEVEL="INFO", OVERCAST_AUTH_DISABLED="true", OVERCAST_PEERS="[]")
    os.environ.setdefault("OVERCAST_DYNAMODB_TABLE", "bench")
    handler = importlib.import_module("handlers.aws")
    handler.reset()
    held: dict[str, Any] = {}

    class Stub:
        def put_item(self, **request: Any) -> dict[str, Any]:
            held["item"] = request["Item"]
            return {}

        def get_item(self, **request: Any) -> dict[str, Any]:
            return {"Item": held["item"]}

    real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w", buffering=1)  # noqa: SIM115
    direct_write = logs._only_json_handler
    try:
        handler.overcast().store.client = Stub()
        ctx = LambdaContext("http", 29)
        body = json.dumps({"author": "ada", "text": "Hello London"}).encode()
        headers = [("content-type", "application/json")]
        post = http_event("POST", "/channels/bench/messages", headers, body, "api.example.com", "127.0.0.1")
        created = json.loads(handler.http(post, ctx)["body"])["id"]
        get = http_event("GET", f"/channels/bench/messages/{created}", [], b"", "api.example.com", "127.0.0.1")
        samples: dict[tuple[str, bool | str], list[float]] = {}
        for n in range(rounds):
            for direct in (True, False) if n % 2 == 0 else (False, True):
                logs._only_json_handler = direct_write if direct else (lambda logger, level: None)
                for name, event in (("GET message", get), ("POST message", post)):
                    started = time.process_time()
                    for _ in range(calls):
                        handler.http(event, ctx)
                    samples.setdefault((name, direct), []).append((time.process_time() - started) / calls * 1000)
        # In a real request the SDK call between two invocations evicts our code and data from
        # the CPU caches, so each call starts cold; a sweep over more memory than the caches hold
        # (outside the timed part) reproduces that.
        sweep = bytearray(CACHE_SWEEP_BYTES)
        for _ in range(rounds // 2):
            for name, event in (("GET message", get), ("POST message", post)):
                spent = 0.0
                for _ in range(calls // 3):
                    bytes(sweep)
                    started = time.process_time()
                    handler.http(event, ctx)
                    spent += time.process_time() - started
                samples.setdefault((name, "cold"), []).append(spent / (calls // 3) * 1000)
    finally:
        logs._only_json_handler = direct_write
        sys.stderr.close()
        sys.stderr = real_stderr
        handler.reset()
    report.method(
        f"our code alone: handlers.aws.http with a stub DynamoDB client, INFO; median of {rounds} runs of {calls} "
        "calls, log lines written directly vs through the logging module, in turns; cache-cold: each call after "
        f"a {CACHE_SWEEP_BYTES >> 20} MiB memory sweep, as after a real SDK call"
    )
    for name in ("GET message", "POST message"):
        report.figure(f"{name}: our CPU, log line written directly", statistics.median(samples[(name, True)]), "ms/req")
        report.figure(f"{name}: our CPU, log line via logging", statistics.median(samples[(name, False)]), "ms/req")
        report.figure(f"{name}: our CPU, cache-cold", statistics.median(samples[(name, "cold")]), "ms/req")


# -- package -------------------------------------------------------------------------------------


def _package_size(report: Section) -> None:
    zip_path = package_zip()
    report.figure("deployment zip (sls package)", round(zip_path.stat().st_size / 1024, 1), "KiB")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        unpacked = sum(info.file_size for info in archive.infolist())
    report.figure("deployment zip files", len(names), "files")
    report.figure("deployment zip unpacked", round(unpacked / 1024, 1), "KiB")
    _zip_cold_import(report, zip_path)


#: What a cold start imports from the zip itself (handlers.aws less the modules that need
#: botocore, which the runtime provides compiled), and PyJWT with the algorithms writes verify.
ZIP_MODULES = (
    "core.app, core.bootstrap, core.replication, core.replication_status, core.service, core.settings, "
    "core.metrics, adapters.http_peer, adapters.jwt_auth, adapters.aws.events, adapters.aws.table, "
    "handlers.kit, jwt, jwt.algorithms"
)


def _zip_cold_import(report: Section, zip_path: Path, rounds: int = IMPORT_ROUNDS) -> None:
    """The zip's modules imported by the runtime's Python (the one tools/sls/bytecode.js used),
    unzipped as in /var/task: with the bytecode the zip ships, and from sources alone, in turns."""
    record_path = zip_path.parent / "bytecode.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {"python": None}
    if not record["python"]:
        report.method(f"cold import from the zip: not measured ({record.get('reason', 'no bytecode.json')})")
        return
    python = record["python"]
    code = f"import time; c = time.process_time(); import {ZIP_MODULES}; print(time.process_time() - c)"
    with tempfile.TemporaryDirectory() as scratch:
        compiled, sources = Path(scratch, "bytecode"), Path(scratch, "sources")
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(compiled)
            archive.extractall(sources, [n for n in archive.namelist() if "__pycache__/" not in n])
        times: dict[Path, list[float]] = {compiled: [], sources: []}
        for n in range(rounds + 1):
            for root in (compiled, sources) if n % 2 == 0 else (sources, compiled):
                env = {"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}  # read-only, as on Lambda
                out = subprocess.run([python, "-S", "-c", code], cwd=root, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    raise RuntimeError(f"cold import from the zip failed: {out.stderr[-500:]}")
                if n:  # the first turn warms the file cache
                    times[root].append(float(out.stdout.split()[-1]) * 1000)
    report.method(
        f"cold import from the zip: {python} -S, unzipped, PYTHONDONTWRITEBYTECODE=1, median of {rounds} "
        "fresh interpreters each, in turns; our modules and PyJWT (stdlib bytecode present on both sides)"
    )
    with_bytecode, from_sources = statistics.median(times[compiled]), statistics.median(times[sources])
    report.figure("cold import from the zip, with its bytecode: CPU", with_bytecode, "ms")
    report.figure("cold import from the zip, sources only: CPU", from_sources, "ms")
    report.figure("cold import from the zip, bytecode / sources", with_bytecode / from_sources, "x")


def package_zip() -> Path:
    """Package serverless.aws.yml offline (tools.packaging, else the CLI) and return the zip,
    kept under .bench/aws-package."""
    out = REPO_ROOT / ".bench" / "aws-package"
    shutil.rmtree(out, ignore_errors=True)  # this benchmark's own scratch directory
    try:
        from tools.packaging import package
    except ImportError:  # the toolchain module is not there: run the CLI directly
        sls = REPO_ROOT / "node_modules" / ".bin" / "sls"
        command = [str(sls), "package", "--config", "serverless.aws.yml", "--package", str(out)]
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    else:
        package("aws", out)
    zips = sorted(out.glob("*.zip"))
    if not zips:
        raise RuntimeError(f"no zip in {out}")
    return zips[0]
