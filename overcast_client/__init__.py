"""A client of the Overcast API that knows both clouds and fails over itself, in about a second.

A DNS-only client moves no sooner than Route 53's requestInterval x failureThreshold + TTL. This
one knows the primary and the secondary endpoints and moves on the first sign of trouble::

    from overcast_client import FailoverClient

    client = FailoverClient("http://127.0.0.2:8080", "http://127.0.0.3:8080",   # the drill's clouds
                            authorization=lambda: "Bearer " + get_token())
    message = client.post_message("london", "hello")      # an Idempotency-Key is added for you
    client.get_message("london", message["id"])
    client.close()

Behaviour (the same rules, for clients in other languages, are in docs/failover.md):

* **Fail over** on a connection error, a timeout, or a 5xx answer from the endpoint in use: the
  same request (same Idempotency-Key) goes to the other endpoint at once. 4xx answers are the
  caller's, never retried.
* **Hedge**: if the endpoint in use has not answered after ``hedge_after_s``, the same request
  also goes to the other one; the first good answer wins. A hedge that wins does not move the
  client (a slow primary is not a failed one); the slow attempt failing does. Every request is
  safe to send twice:
  reads and deletes are idempotent, and every POST carries an Idempotency-Key (one is generated
  if the caller gave none), so two clouds create one message.
* **Stick**: after a failover every request goes to the secondary until the primary's
  ``/health/deep`` answers 200 ``recover_after`` times in a row (probed every
  ``probe_every_s`` from a background thread), so a flapping primary does not bounce traffic.

Standard library only; thread-safe.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClientError", "FailoverClient", "Reply", "Unavailable"]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]
    endpoint: str  # which endpoint answered
    attempts: int  # requests sent for this call (hedges and failovers included)
    failed: int = 0  # attempts that had failed (error, timeout, 5xx) when this answer came


class ClientError(Exception):
    """The API refused the request (a 4xx): retrying elsewhere would not help."""

    def __init__(self, reply: Reply) -> None:
        error = reply.body.get("error", {}) if isinstance(reply.body, dict) else {}
        super().__init__(f"HTTP {reply.status} {error.get('code', '')}: {error.get('message', '')}".strip())
        self.reply = reply


class Unavailable(Exception):
    """Neither endpoint gave a usable answer (the last failure is the cause)."""


@dataclass
class _Attempt:
    endpoint: str
    reply: Reply | None = None
    error: BaseException | None = None

    @property
    def usable(self) -> bool:
        return self.reply is not None and self.reply.status < 500


@dataclass
class FailoverClient:
    primary: str
    secondary: str
    authorization: Callable[[], str] | None = None
    timeout_s: float = 2.0
    hedge_after_s: float = 0.5
    probe_every_s: float = 1.0
    recover_after: int = 3
    #: Called with (from, to) when the client moves between endpoints.
    on_switch: Callable[[str, str], None] | None = None
    _on_secondary: bool = field(default=False, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _probe_stop: threading.Event = field(default_factory=threading.Event, init=False)
    _prober: threading.Thread | None = field(default=None, init=False)
    _pool: concurrent.futures.ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.primary, self.secondary = self.primary.rstrip("/"), self.secondary.rstrip("/")
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="overcast-client")

    # -- the API ---------------------------------------------------------------------------------

    def post_message(
        self, channel: str, text: str, *, author: str | None = None, idempotency_key: str | None = None
    ) -> Any:
        body = {"text": text} if author is None else {"author": author, "text": text}
        headers = {"idempotency-key": idempotency_key or uuid.uuid4().hex}
        return self._ok(self.request("POST", f"/channels/{_q(channel)}/messages", body, headers)).body

    def get_message(self, channel: str, message_id: str) -> Any:
        return self._ok(self.request("GET", f"/channels/{_q(channel)}/messages/{_q(message_id)}")).body

    def list_messages(self, channel: str, limit: int | None = None) -> Any:
        query = f"?limit={limit}" if limit is not None else ""
        return self._ok(self.request("GET", f"/channels/{_q(channel)}/messages{query}")).body

    def delete_message(self, channel: str, message_id: str) -> None:
        self._ok(self.request("DELETE", f"/channels/{_q(channel)}/messages/{_q(message_id)}"))

    @property
    def active(self) -> str:
        """The endpoint requests go to first."""
        return self.secondary if self._on_secondary else self.primary

    def close(self) -> None:
        with self._lock:
            self._probe_stop.set()
            prober = self._prober
        if prober is not None:
            prober.join(timeout=self.probe_every_s + self.timeout_s + 1)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> FailoverClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one call: active endpoint, hedge, failover ---------------------------------------------

    def request(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Reply:
        """Send to the active endpoint, hedge to the other after ``hedge_after_s``, fail over on a
        connection error, timeout or 5xx. Returns the first usable reply (any status below 500);
        raises Unavailable when neither endpoint gave one."""
        if method == "POST" and not any(k.lower() == "idempotency-key" for k in (headers or {})):
            headers = {**(headers or {}), "idempotency-key": uuid.uuid4().hex}  # safe to send twice
        first, other = self.active, (self.primary if self._on_secondary else self.secondary)
        data = json.dumps(body).encode() if body is not None else None
        send = lambda endpoint: self._pool.submit(self._send, endpoint, method, path, data, headers or {})  # noqa: E731
        primary_attempt = send(first)
        if first == self.primary:  # however the call ends, a failed primary attempt moves the client
            primary_attempt.add_done_callback(self._after_primary_attempt)
        pending = {primary_attempt}
        sent, failed = 1, 0
        hedged_at = time.monotonic() + self.hedge_after_s
        last: _Attempt | None = None
        while pending:
            wait_s = max(hedged_at - time.monotonic(), 0) if sent == 1 else None
            done, pending = concurrent.futures.wait(pending, timeout=wait_s, return_when="FIRST_COMPLETED")
            for future in done:
                attempt: _Attempt = future.result()
                if attempt.usable:
                    assert attempt.reply is not None
                    for rest in pending:
                        rest.cancel()
                    reply = attempt.reply
                    return Reply(reply.status, reply.body, reply.headers, attempt.endpoint, sent, failed)
                last = attempt
                failed += 1
            if sent == 1 and (done or time.monotonic() >= hedged_at):
                # The first endpoint failed, or is slow: the same request to the other one.
                pending.add(send(other))
                sent = 2
        raise Unavailable(f"{method} {path}: no endpoint answered") from (last.error if last else None)

    def _after_primary_attempt(self, future: concurrent.futures.Future[_Attempt]) -> None:
        if not future.cancelled() and not future.result().usable:
            self._fail_over()

    def _send(self, endpoint: str, method: str, path: str, data: bytes | None, headers: Mapping[str, str]) -> _Attempt:
        request = urllib.request.Request(endpoint + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if self.authorization is not None and method != "GET":
            request.add_header("authorization", self.authorization())
        for name, value in headers.items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                status, raw, got = response.status, response.read(), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            status, raw, got = exc.code, exc.read(), dict(exc.headers.items())
        except (OSError, ValueError) as exc:  # refused, reset, timeout, a broken reply
            return _Attempt(endpoint, error=exc)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8", "replace")
        return _Attempt(endpoint, Reply(status, parsed, got, endpoint, 1))

    @staticmethod
    def _ok(reply: Reply) -> Reply:
        if reply.status >= 400:
            raise ClientError(reply)
        return reply

    # -- stickiness ------------------------------------------------------------------------------

    def _fail_over(self) -> None:
        with self._lock:
            if self._on_secondary or self._probe_stop.is_set():  # already moved, or closed
                return
            self._on_secondary = True
            prober = threading.Thread(target=self._probe, name="overcast-client-probe", daemon=True)
            prober.start()
            self._prober = prober
        if self.on_switch:
            self.on_switch(self.primary, self.secondary)

    def _probe(self) -> None:
        """Back to the primary after ``recover_after`` deep health 200s in a row."""
        healthy = 0
        while not self._probe_stop.wait(self.probe_every_s):
            healthy = healthy + 1 if self.primary_healthy() else 0
            if healthy >= self.recover_after:
                with self._lock:
                    self._on_secondary = False
                if self.on_switch:
                    self.on_switch(self.secondary, self.primary)
                return

    def primary_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.primary + "/health/deep", timeout=self.timeout_s) as response:
                return bool(response.status == 200)
        except (OSError, ValueError):
            return False


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")
