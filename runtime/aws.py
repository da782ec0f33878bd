"""A local stand-in for Lambda + API Gateway (HTTP API) + the DynamoDB Streams event source.

    python -m runtime.aws --host 127.0.0.2 --port 8080 \\
        --dynamodb-endpoint http://127.0.0.1:PORT --table NAME [--create-table]

* HTTP: every request becomes an API Gateway payload 2.0 event and goes to
  ``handlers.aws.http(event, context)`` exactly as Lambda would call it (fresh context object per
  invocation); the returned dict becomes the HTTP response (cookies, base64 bodies included).
* Streams: a background poller reads the table's stream through the real DynamoDB Streams API
  of the server (DescribeStream, GetShardIterator, GetRecords per shard),
  batches records into the Lambda event shape and calls ``handlers.aws.changes``. It honours
  ``batchItemFailures`` the way Lambda does with ReportBatchItemFailures: the shard stops, and
  the batch is re-delivered from the first failed record after a backoff, until it succeeds or
  the retry budget is spent (then it is dropped like a batch sent to an on-failure destination;
  anti-entropy repairs what it carried).
  Like an event source mapping it keeps its position: with ``--checkpoint-file`` the last
  sequence number delivered per shard is kept in a file, and a restarted poller resumes AFTER it
  (a first start, or a shard the file does not know, reads from TRIM_HORIZON: serverless.aws.yml's
  ``startingPosition``). Without the file it starts at LATEST every time (writes made while it
  was down are then not delivered by the stream).

OVERCAST_* variables (peers, secret, origin, ...) pass through to the handler. Prints one line
``ready http://host:port`` when serving; SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from runtime.frontdoor import Answer, FrontDoor, Incoming
from runtime.mesh import Cloud
from runtime.pump import PollLoop, RetryPolicy, deliver

logger = logging.getLogger("overcast.runtime.aws")
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
HTTP_TIMEOUT_S = 29.0  # API Gateway's integration timeout


class LambdaContext:
    """What Lambda passes as ``context`` (the attributes handlers use)."""

    def __init__(self, function_name: str, timeout_s: float, memory_mb: int = 256, region: str = "us-east-1") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# -- HTTP API ------------------------------------------------------------------------------------


def http_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, host: str, source_ip: str
) -> dict[str, Any]:
    """The API Gateway HTTP API payload 2.0 event for one request (``$default`` stage/route)."""
    parts = urlsplit(target)
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    now = time.time()
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": unquote(parts.path or "/"),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode().rstrip("="),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if parts.query:
        query: dict[str, str] = {}
        for pair in parts.query.split("&"):
            name, _, value = pair.partition("=")
            query[unquote(name)] = (
                f"{query[unquote(name)]},{unquote(value)}" if unquote(name) in query else unquote(value)
            )
        event["queryStringParameters"] = query
    if body:
        if text is not None:
            event["body"] = text
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


class LocalApiGateway(FrontDoor):
    """API Gateway's HTTP API in front of the function: payload 2.0 events in, the function's dict out."""

    def __init__(
        self, host: str, port: int, invoke: Callable[[dict[str, Any], Any], dict[str, Any]], function_name: str
    ) -> None:
        self.invoke = invoke
        self.function_name = function_name
        super().__init__(
            host,
            port,
            self._answer,
            max_body=MAX_BODY,
            too_large=Answer(413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}'),
            crashed=Answer(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'),
            logger=logger,
        )

    def _answer(self, incoming: Incoming) -> Answer:
        event = http_event(
            incoming.method, incoming.target, list(incoming.headers), incoming.body, incoming.host, incoming.client_ip
        )
        result = self.invoke(event, LambdaContext(self.function_name, HTTP_TIMEOUT_S))
        raw = result.get("body") or ""
        return Answer(
            int(result["statusCode"]),
            {str(k): str(v) for k, v in (result.get("headers") or {}).items()},
            base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8"),
            [str(c) for c in result.get("cookies") or ()],
        )


# -- DynamoDB Streams event source ---------------------------------------------------------------


class StreamPoller:
    """Polls every shard of a table's stream and feeds batches to the stream handler.

    Per shard, records are delivered in order and a failed batch blocks its shard until it is
    delivered or dropped, as with Lambda's event source mapping.
    """

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table: str,
        invoke: Callable[[dict[str, Any], Any], dict[str, Any]],
        *,
        function_name: str = "changes",
        batch_size: int = 100,
        max_retries: int = 10,
        poll_interval_s: float = 0.25,
        backoff_s: tuple[float, float] = (0.2, 5.0),
        region: str = "us-east-1",
        checkpoint_path: Path | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.checkpoint_path = checkpoint_path
        self.streams = streams
        self.table = table
        self.invoke = invoke
        self.function_name = function_name
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.poll_interval_s = poll_interval_s
        self.backoff_s = backoff_s
        self.region = region
        self.stream_arn = ""
        self._iterators: dict[str, str | None] = {}  # shard id → iterator (None: closed, done)
        self._last_sequence: dict[str, str] = {}
        self._stop = threading.Event()
        self._last_discovery = time.monotonic()
        self._loop = PollLoop(
            self.poll_once,
            name="stream-poller",
            idle_s=poll_interval_s,
            error_backoff=RetryPolicy(backoff_s=(1.0, 1.0)),
            logger=logger,
            stop=self._stop,
        )
        self.delivered = 0
        self.dropped = 0

    def prepare(self) -> None:
        """Find the stream and take iterators for its shards (before serving, so no write made
        after ``ready`` is missed): after the checkpoint's sequence numbers when there is one, else
        LATEST (no checkpoint file) or TRIM_HORIZON (a checkpoint file not written yet)."""
        table = self.dynamodb.describe_table(TableName=self.table)["Table"]
        self.stream_arn = table.get("LatestStreamArn", "")
        if not self.stream_arn or not table.get("StreamSpecification", {}).get("StreamEnabled", True):
            raise RuntimeError(f"table {self.table} has no stream enabled")
        if self.checkpoint_path is not None and self.checkpoint_path.is_file():
            state = json.loads(self.checkpoint_path.read_text())
            if state.get("stream_arn") == self.stream_arn:  # a recreated table has a new stream
                self._last_sequence = {str(k): str(v) for k, v in state.get("shards", {}).items()}
        self._discover(initial=True)

    def _discover(self, initial: bool = False) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"].get("Shards", [])
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self._iterators:
                continue
            options: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
            closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
            if shard_id in self._last_sequence:  # resume where the last run left off
                options.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=self._last_sequence[shard_id])
            elif initial and self.checkpoint_path is None:
                if closed:
                    self._iterators[shard_id] = None
                    continue
                options.update(ShardIteratorType="LATEST")
            else:  # a new child shard, or a mapping's first start: read it all
                options.update(ShardIteratorType="TRIM_HORIZON")
            self._iterators[shard_id] = self.streams.get_shard_iterator(**options)["ShardIterator"]

    def start(self) -> StreamPoller:
        self._loop.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._loop.stop(timeout)

    def poll_once(self) -> bool:
        """One pass over every shard; True when some shard had records (poll again at once)."""
        if time.monotonic() - self._last_discovery > 5:
            self._discover()
            self._last_discovery = time.monotonic()
        busy = False
        for shard_id in list(self._iterators):
            if self._stop.is_set():
                break
            busy |= self._poll_shard(shard_id)
        return busy

    def _poll_shard(self, shard_id: str) -> bool:
        iterator = self._iterators.get(shard_id)
        if iterator is None:
            return False
        try:
            answer = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
        except self.streams.exceptions.ExpiredIteratorException:
            self._iterators[shard_id] = self._resume_iterator(shard_id)
            return True
        self._iterators[shard_id] = answer.get("NextShardIterator")
        records = [self._lambda_record(r) for r in answer.get("Records", [])]
        if records and self._deliver(records):
            self._last_sequence[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            self._save_checkpoint()
        return bool(records)

    def _save_checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        temporary = self.checkpoint_path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"stream_arn": self.stream_arn, "shards": self._last_sequence}))
        os.replace(temporary, self.checkpoint_path)  # never half a checkpoint after a kill

    def _resume_iterator(self, shard_id: str) -> str:
        last = self._last_sequence.get(shard_id)
        options: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard_id}
        if last:
            options.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=last)
        else:
            options.update(ShardIteratorType="LATEST")
        return str(self.streams.get_shard_iterator(**options)["ShardIterator"])

    def _lambda_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A GetRecords record → the record as Lambda's event carries it (JSON types only)."""
        body = json.loads(json.dumps(record, default=_json_default))
        body["eventSourceARN"] = self.stream_arn
        body.setdefault("awsRegion", self.region)
        body.setdefault("eventSource", "aws:dynamodb")
        return body

    def _deliver(self, records: list[dict[str, Any]]) -> bool:
        """Lambda's event source mapping with ReportBatchItemFailures: the batch is delivered
        again from its first failed record until it succeeds or the retries are spent. False:
        stopped meanwhile (the position stays before the batch)."""

        def invoke(pending: Sequence[dict[str, Any]], _retries: int) -> Sequence[dict[str, Any]]:
            context = LambdaContext(self.function_name, 60.0, region=self.region)
            result = self.invoke({"Records": list(pending)}, context) or {}
            failed = {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or ()}
            first = next((i for i, r in enumerate(pending) if r["dynamodb"]["SequenceNumber"] in failed), None)
            return [] if first is None else pending[first:]

        policy = RetryPolicy(self.max_retries, self.backoff_s)  # -1: retry until delivered (Lambda's default)
        outcome = deliver(records, invoke, policy, self._stop, logger, "stream batch")
        self.delivered += outcome.delivered
        if outcome.given_up:
            self.dropped += len(outcome.given_up)
            _log_json(
                logging.ERROR,
                "stream batch dropped after retries (on-failure destination)",
                records=len(outcome.given_up),
                first_sequence=outcome.given_up[0]["dynamodb"]["SequenceNumber"],
                last_sequence=outcome.given_up[-1]["dynamodb"]["SequenceNumber"],
            )
        return not outcome.stopped


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _log_json(level: int, msg: str, **fields: Any) -> None:
    logger.log(level, json.dumps({"msg": msg, "logger": logger.name, **fields}))


# -- process -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.aws", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    parser.add_argument(
        "--dynamodb-endpoint", required=True, help="DynamoDB endpoint URL (moto server, DynamoDB Local)"
    )
    parser.add_argument("--table", required=True, help="table name")
    parser.add_argument(
        "--create-table", action="store_true", help="create the table (serverless.aws.yml's definition)"
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or "us-east-1")
    parser.add_argument("--no-stream", action="store_true", help="do not poll the stream (no replication out)")
    parser.add_argument("--batch-size", type=int, default=100, help="stream batch size (serverless.aws.yml: 100)")
    parser.add_argument(
        "--stream-max-retries", type=int, default=10, help="retries of a failed batch before it is dropped"
    )
    parser.add_argument(
        "--checkpoint-file", type=Path, help="keep the stream position here, so a restart resumes (default: LATEST)"
    )
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("--host must be a loopback address (127.x.y.z)")
    endpoint_host = urlsplit(args.dynamodb_endpoint).hostname or ""
    if not (endpoint_host.startswith("127.") or endpoint_host == "localhost"):
        parser.error("--dynamodb-endpoint must point at a local server (127.x.y.z)")

    # What Lambda's environment would hold, unless the caller set it.
    os.environ["OVERCAST_DYNAMODB_TABLE"] = args.table
    os.environ["OVERCAST_DYNAMODB_ENDPOINT"] = args.dynamodb_endpoint
    os.environ["AWS_REGION"] = args.region
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("OVERCAST_PROVIDER", "aws")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    import boto3

    from adapters.aws.store import CLIENT_CONFIG
    from adapters.aws.table import create_table
    from handlers import aws as handler

    session = boto3.session.Session(region_name=args.region)
    dynamodb = session.client("dynamodb", endpoint_url=args.dynamodb_endpoint, config=CLIENT_CONFIG)
    if args.create_table:
        create_table(dynamodb, args.table)
    poller: StreamPoller | None = None
    if not args.no_stream:
        streams = session.client("dynamodbstreams", endpoint_url=args.dynamodb_endpoint, config=CLIENT_CONFIG)
        poller = StreamPoller(
            dynamodb,
            streams,
            args.table,
            handler.changes,
            batch_size=args.batch_size,
            max_retries=args.stream_max_retries,
            region=args.region,
            checkpoint_path=args.checkpoint_file,
        )
        poller.prepare()
    server = LocalApiGateway(args.host, args.port, handler.http, "http")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http", daemon=True)
    serving.start()
    if poller:
        poller.start()
    print(f"ready {server.url}", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        if poller:
            poller.stop()
    return 0


class AwsCloud(Cloud):
    """An AWS cloud in ``runtime.mesh``: moto server (DynamoDB + Streams) on the cloud's address."""

    kind = "aws"
    scheduled_entrypoint = "handlers.aws:anti_entropy"  # EventBridge schedule in serverless.aws.yml
    table = "overcast-messages"

    def start_emulator(self) -> None:
        from emulators.moto import MotoServer

        moto = MotoServer(host=self.host, port=self._emulator_port(self.host))
        self.emulator, self.emulator_process = moto, moto.process
        self.store_spec = f"dynamodb://{self.table}?endpoint={moto.url}&region=us-east-1"
        moto.start()

    def kind_args(self) -> list[str]:
        # The position outlives the runtime process, as an event source mapping's does.
        checkpoint = ["--checkpoint-file", str(self.workdir / f"{self.name}-stream-checkpoint.json")]
        return ["--dynamodb-endpoint", self.emulator.url, "--table", self.table, "--create-table", *checkpoint]

    @classmethod
    def scheduled_invocation(cls, every_s: float) -> tuple[dict[str, Any], LambdaContext]:
        """The EventBridge scheduled event and a Lambda context, as the schedule rule invokes."""
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": now,
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:000000000000:rule/overcast-anti-entropy"],
            "detail": {},
        }
        return event, LambdaContext("antiEntropy", timeout_s=max(every_s, 60.0))

    def store_env(self) -> dict[str, str]:
        return {
            "OVERCAST_DYNAMODB_TABLE": self.table,
            "OVERCAST_DYNAMODB_ENDPOINT": self.emulator.url,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }


if __name__ == "__main__":
    sys.exit(main())
