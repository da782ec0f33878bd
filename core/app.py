"""The HTTP API (same on every provider): routes → use cases, errors → JSON.

``HttpApp.handle`` never raises: bad input becomes a 4xx JSON error, a failing dependency a 503
with Retry-After, and an unexpected bug a logged 500 JSON error without a stack trace.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from core import replication
from core.auth import AccessPolicy, authorizer_for
from core.errors import (
    ClockSkew,
    InsufficientScope,
    OvercastError,
    PayloadTooLarge,
    Unauthenticated,
    ValidationError,
)
from core.http import Request, Response, Router
from core.logs import get_logger, log, request_id_var
from core.model import quote
from core.replication_status import ReplicationStatus
from core.service import MessageService
from core.settings import Settings

logger = get_logger("http")
# Echoed in a header, so nothing that could end it (no space, no newline). "+/=" because API
# Gateway's own ids are base64 ("JKJaXmPLvHcESHA="): kept, they match its access logs.
_REQUEST_ID_RE = re.compile(r"\A[A-Za-z0-9._:+/=-]{1,128}\Z")
# ASCII digits only: str.isdigit() also takes "²" and other scripts' digits, which int() refuses.
_LIMIT_RE = re.compile(r"\A[0-9]{1,6}\Z")


class HttpApp:
    def __init__(
        self,
        service: MessageService,
        settings: Settings,
        now_s: Callable[[], int] | None = None,
        policy: AccessPolicy | None = None,
        status: ReplicationStatus | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.status = status or ReplicationStatus(
            settings.origin,
            [p.name for p in settings.peers],
            max_skew_s=settings.replication_max_skew_s,
            lag_bound_s=settings.replication_lag_bound_s,
        )
        # Without a policy (no token verifier): writes are open only when auth is disabled.
        self.policy = policy or AccessPolicy(authorizer_for(settings.auth, None), settings.auth)
        self.now_s = now_s or (lambda: int(time.time()))
        self.served_by = {"provider": settings.provider, "region": settings.region}
        self.router = Router()
        r = self.router
        r.add("GET", "/health", self.health)
        r.add("GET", "/health/deep", self.deep_health)
        r.add("POST", "/channels/{channel}/messages", self.post_message)
        r.add("GET", "/channels/{channel}/messages", self.list_messages)
        r.add("GET", "/channels/{channel}/messages/{message_id}", self.get_message)
        r.add("DELETE", "/channels/{channel}/messages/{message_id}", self.delete_message)
        r.add("POST", replication.BATCH_PATH, self.replication_batch)
        r.add("POST", replication.DIGEST_PATH, self.replication_digest)
        r.add("POST", replication.FETCH_PATH, self.replication_fetch)
        r.add("POST", replication.TREE_PATH, self.replication_tree)
        r.add("GET", replication.STATUS_PATH, self.replication_status)

    def handle(self, request: Request) -> Response:
        request_id = self._request_id(request)
        token = request_id_var.set(request_id)
        started = time.perf_counter_ns()
        route = "-"
        try:
            if len(request.body) > self.settings.limits.max_body_bytes and request.path != replication.BATCH_PATH:
                raise PayloadTooLarge(f"request body larger than {self.settings.limits.max_body_bytes} bytes")
            handler, params, route = self.router.resolve(request.method, _normalise(request.path))
            if request.request_id != request_id:  # a copy only when the id is not the event's own
                request = request.with_request_id(request_id)
            response = handler(request, **params)
        except OvercastError as error:
            level = logging.WARNING if error.status >= 500 else logging.INFO
            log(logger, level, "request failed", code=error.code, error=error.message)
            response = Response.from_error(error, request_id)
            if isinstance(error, Unauthenticated | InsufficientScope):  # RFC 6750 challenge
                response.headers["www-authenticate"] = error.challenge()
        except Exception:
            logger.exception("unhandled error")
            response = Response.from_error(OvercastError("internal error; see logs for request_id"), request_id)
        finally:
            request_id_var.reset(token)
        response.headers["x-request-id"] = request_id
        log(
            logger,
            logging.INFO,
            "request",
            request_id=request_id,
            method=request.method,
            route=route,
            status=response.status,
            ms=(time.perf_counter_ns() - started) // 10_000 / 100,  # integer steps: no round()
            **response.log_fields,
        )
        return response

    # -- routes -------------------------------------------------------------------------------

    def health(self, request: Request) -> Response:
        return Response.json(200, {"status": "ok", "served_by": self.served_by})

    def deep_health(self, request: Request) -> Response:
        result = self.service.deep_health(self.settings.deep_health_timeout_s)
        return Response.json(200, {**result, "served_by": self.served_by}, {"cache-control": "no-store"})

    def post_message(self, request: Request, channel: str) -> Response:
        principal = self.policy.writer(request.header("authorization"))  # before reading the body
        payload = request.json()
        if not isinstance(payload, dict):
            raise ValidationError("request body must be a JSON object", code="invalid_json")
        unknown = set(payload) - {"author", "text"}
        if unknown:
            names = ", ".join(quote(name) for name in sorted(unknown)[:5])
            raise ValidationError(f"unknown fields: {names}", code="unknown_field")
        key = request.header("idempotency-key")
        author = self.policy.author(principal, payload.get("author"))
        result = self.service.post(channel, author, payload.get("text"), key)
        headers = {"location": f"/channels/{channel}/messages/{result.message.id}"}
        if not result.created:
            headers["idempotent-replayed"] = "true"
        response = Response.json(201, self._message(result.message), headers)
        # What was written goes on the request's access line (one line per request, not two).
        response.log_fields = {"channel": channel, "id": result.message.id, "version": str(result.message.version)}
        return response

    def list_messages(self, request: Request, channel: str) -> Response:
        self.policy.reader(request.header("authorization"))
        limit_text = request.query.get("limit")
        limit = None
        if limit_text is not None:
            if not _LIMIT_RE.match(limit_text):
                raise ValidationError("limit must be a positive integer", code="invalid_limit")
            limit = int(limit_text)
        page = self.service.list(channel, limit, request.query.get("cursor") or None)
        return Response.json(
            200,
            {"items": [m.to_api() for m in page.items], "next_cursor": page.next_cursor, "served_by": self.served_by},
        )

    def get_message(self, request: Request, channel: str, message_id: str) -> Response:
        self.policy.reader(request.header("authorization"))
        return Response.json(200, self._message(self.service.get(channel, message_id)))

    def delete_message(self, request: Request, channel: str, message_id: str) -> Response:
        principal = self.policy.writer(request.header("authorization"))
        if principal is not None:
            self.policy.may_delete(principal, self.service.get(channel, message_id).author)
        self.service.delete(channel, message_id)
        return Response.empty(204)

    def replication_batch(self, request: Request) -> Response:
        sender = self._verified_peer(request)
        messages, repair = replication.decode_batch_payload(request.body, sender, self.settings.limits)
        result = replication.apply_batch(self.service, messages)
        self.status.received(sender, len(messages), result.applied_versions_ms, repair=repair)
        log(
            logger,
            logging.INFO,
            "replication batch applied",
            sender=sender,
            applied=result.applied,
            ignored=result.ignored,
        )
        return Response.json(200, {"applied": result.applied, "ignored": result.ignored, "served_by": self.served_by})

    def replication_digest(self, request: Request) -> Response:
        """Anti-entropy read: a page of this store's (channel, id, version) since a floor."""
        sender = self._verified_peer(request)
        payload = replication.decode_json_object(request.body, sender, self.settings.limits.max_body_bytes)
        from core import anti_entropy  # only peers' repair passes call this: keep it off cold starts

        answer = anti_entropy.answer_digest(self.service.store, payload)
        return Response.json(200, {**answer, "origin": self.settings.origin})

    def replication_fetch(self, request: Request) -> Response:
        """Anti-entropy read: full records for the keys a peer found newer here."""
        sender = self._verified_peer(request)
        payload = replication.decode_json_object(request.body, sender, self.settings.limits.max_body_bytes)
        from core import anti_entropy  # only peers' repair passes call this: keep it off cold starts

        answer = anti_entropy.answer_fetch(self.service.store, payload)
        return Response.json(200, {**answer, "origin": self.settings.origin})

    def replication_status(self, request: Request) -> Response:
        """This cloud's view of replication with each peer (core/replication_status.py). Signed
        like every replication route: peers and the operator's tool, never a user token."""
        self._verified_peer(request, exchange=False)  # the asker's clock is not the peer cloud's
        return Response.json(
            200, {**self.status.snapshot(), "served_by": self.served_by}, {"cache-control": "no-store"}
        )

    def replication_tree(self, request: Request) -> Response:
        """Anti-entropy read: nodes of this store's digest tree, or the records of some leaves."""
        sender = self._verified_peer(request)
        payload = replication.decode_json_object(request.body, sender, self.settings.limits.max_body_bytes)
        from core import anti_entropy  # only peers' repair passes call this: keep it off cold starts

        answer = anti_entropy.answer_tree(self.service.store, payload)
        return Response.json(200, {**answer, "origin": self.settings.origin})

    # -- helpers ------------------------------------------------------------------------------

    def _verified_peer(self, request: Request, *, exchange: bool = True) -> str:
        """The signed sender of a replication request, or Unauthorized (before anything is read).
        Every verified request carries the sender's clock: its offset from ours is recorded, and a
        request outside the freshness window is refused by name (``clock_skew``) and logged.
        ``exchange`` False: a status read (the operator's tool signs it), whose clock is not
        recorded as the peer's."""
        now_s = self.now_s()
        try:
            sender = replication.verify(
                request.headers,
                request.body,
                lambda name: peer.secret if (peer := self.settings.peer(name)) else None,
                now_s,
                self.settings.replication_max_skew_s,
            )
        except ClockSkew as skew:
            sender = request.header(replication.ORIGIN_HEADER) or "?"
            if exchange:
                self.status.clock_offset(sender, skew.offset_s, rejected=True)
            log(
                logger,
                logging.ERROR,
                "peer clock outside the freshness window; request refused",
                code=skew.code,
                peer=sender,
                offset_s=skew.offset_s,
                max_skew_s=self.settings.replication_max_skew_s,
            )
            raise
        offset_s = replication.clock_offset_s(request.headers, now_s)
        if exchange and offset_s is not None:
            self.status.clock_offset(sender, offset_s)
        return sender

    def _message(self, message: Any) -> dict[str, Any]:
        return {**message.to_api(), "served_by": self.served_by}

    @staticmethod
    def _request_id(request: Request) -> str:
        for candidate in (request.request_id, request.header("x-request-id") or ""):
            if candidate and _REQUEST_ID_RE.match(candidate):
                return candidate
        return _new_request_id()


# uuid4's variant and version bits, set on 128 random bits: ``uuid.uuid4().hex`` without
# building a UUID object (its checks cost more than the id, on every request without one).
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def _new_request_id() -> str:
    return f"{int.from_bytes(os.urandom(16), 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"


def _normalise(path: str) -> str:
    return path.rstrip("/") or "/"
