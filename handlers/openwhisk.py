"""Composition root of the OpenWhisk provider (Apache OpenWhisk / IBM Cloud Functions, Python actions).

    http(params)          web action (raw HTTP): __ow_* parameters → core app → {statusCode, headers, body}
    changes(params)       Cloudant changes (the trigger's one-change event, or a _changes batch with docs)
                          → forward locally-originated changes to every peer; returns {"error": ...}
                          when a push failed, so the activation fails and the delivery is retried
    anti_entropy(params)  alarm trigger → one anti-entropy pass against every peer

serverless-openwhisk packages ``handler: handlers/openwhisk.http`` as a zip whose ``__main__.py``
is this file and whose ``main`` is the function name; ``core`` and ``adapters`` import from the
zip root.

Configuration arrives as parameters: OpenWhisk hands an action its bound package/action
parameters in every invocation's ``params`` (not as environment variables). Parameters named
``OVERCAST_*`` or ``CLOUDANT_*`` are read as settings, over the process environment (local runs
use the environment). The web action runs in raw-http mode with ``final: true``, so a request can
neither add nor override a parameter. The client, the store and the app are built once per
container, on the first invocation (never at import), and reused while it stays warm.

Settings (besides core's OVERCAST_* settings, see ``python -m core.settings``; docs/openwhisk.md):

    CLOUDANT_URL       instance URL, https://<account>.cloudantnosqldb.appdomain.example  (required)
    CLOUDANT_APIKEY    IAM API key (a bound parameter), or CLOUDANT_USERNAME + CLOUDANT_PASSWORD
    CLOUDANT_DB        database name (default "overcast")
    CLOUDANT_TIMEOUT_S read timeout of one request (default 5)
    OVERCAST_ANTI_ENTROPY_WINDOW_S  how far back a scheduled pass compares (default 900)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from adapters.http_peer import UrllibPeerTransport
from adapters.jwt_auth import authorizer_for
from adapters.openwhisk.events import to_changes, to_request, to_response
from adapters.openwhisk.store import CloudantMessageStore, cloudant_client
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError, OvercastError, ValidationError
from core.http import Request
from core.logs import get_logger, log
from core.settings import Settings
from handlers.kit import LazyApp, deliver_changes, serve_http

logger = get_logger("openwhisk")

DEFAULT_DATABASE = "overcast"
_SETTING_PARAM = re.compile(r"^(OVERCAST|CLOUDANT)_[A-Z0-9_]+$")


def settings_from(params: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment the app is built from: the process environment, then the invocation's
    setting parameters (bound parameters win: they are the deployment's configuration)."""
    env = dict(os.environ if environ is None else environ)
    for key, value in (params or {}).items():
        if _SETTING_PARAM.match(str(key)) and isinstance(value, (str, int, float)):
            env[str(key)] = str(value)
    return env


def build(environ: Mapping[str, str] | None = None, *, client: Any = None) -> Overcast:
    """Build the app: one CloudantV1 client, one store, one Overcast. ``client`` (prebuilt)
    skips building one (tests, the local runtime)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "openwhisk")
    settings = Settings.from_env(env)
    if client is None:
        url = env.get("CLOUDANT_URL", "").strip()
        if not url:
            raise ConfigurationError("CLOUDANT_URL is not set (bind it as a package parameter)")
        client = cloudant_client(
            url,
            apikey=env.get("CLOUDANT_APIKEY", "").strip(),
            username=env.get("CLOUDANT_USERNAME", "").strip(),
            password=env.get("CLOUDANT_PASSWORD", ""),
            read_timeout_s=_timeout_s(env.get("CLOUDANT_TIMEOUT_S", "5")),
        )
    store = CloudantMessageStore(client, env.get("CLOUDANT_DB") or DEFAULT_DATABASE)
    return bootstrap(settings, store, UrllibPeerTransport(), authorizer=authorizer_for(settings.auth))


def _timeout_s(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0.1 <= value <= 60:
        raise ConfigurationError(f"CLOUDANT_TIMEOUT_S={text!r} must be a number of seconds from 0.1 to 60")
    return value


def _build_from(params: Mapping[str, Any] | None = None) -> Overcast:
    return build(settings_from(params))


#: The container-wide app (handlers.kit.LazyApp), built on first use from the environment and the
#: invocation's setting parameters: ``overcast(params)``. A failed build raises and is retried on
#: the next invocation. ``install`` puts a prebuilt one in place (the local runtime, tests).
overcast = LazyApp(_build_from)
install = overcast.install


# -- entrypoints --------------------------------------------------------------------------------


def http(params: dict[str, Any]) -> dict[str, Any]:
    """Web action. Never raises: every failure is a JSON response."""

    def parse() -> tuple[Request, Any]:
        return to_request(params), to_response

    return serve_http(logger, parse, to_response, lambda: overcast(params))


def changes(params: dict[str, Any]) -> dict[str, Any]:
    """Cloudant changes → peers. A failed push returns ``{"error": ...}``: the activation counts as
    failed and the delivery is retried (the local runtime retries it; on the platform, wire the
    trigger through a retrying feed). A change that is not a message is poison: logged and
    acknowledged (handlers.kit). Re-delivery is harmless: peers apply last-writer-wins, and
    records that came from a peer are not forwarded again."""
    try:
        records = to_changes(params)
    except ValidationError as error:
        log(logger, logging.ERROR, "unreadable change event dropped", error=error.message)
        return {"forwarded": 0, "dropped": error.message}
    report = deliver_changes(logger, records, lambda: overcast(params))
    if not report.ok:
        return {"error": report.summary(), "failed": len(report.undelivered)}
    if report.sent:
        log(logger, logging.INFO, "change batch replicated", sent=report.sent, records=report.records)
    last_seq = params.get("last_seq")
    return {
        "forwarded": report.sent,
        "records": report.records,
        "last_seq": None if last_seq is None else str(last_seq),
    }


def anti_entropy(params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scheduled repair pass (alarm trigger; the payload is ignored). Returns ``{"error": ...}``
    when a peer could not be repaired, so the activation counts as failed."""
    from core import anti_entropy as anti_entropy_pass  # only the scheduled action pays for it

    env = settings_from(params)
    try:
        window_s = int(env.get("OVERCAST_ANTI_ENTROPY_WINDOW_S", "900"))
        report = anti_entropy_pass.run(overcast(params), window_s=window_s, budget_s=240.0)
    except (OvercastError, ValueError) as error:
        return {"error": f"anti-entropy did not run: {error}"}
    summary = report.to_dict()
    log(logger, logging.INFO, "anti-entropy done", ok=summary["ok"], pushed=summary["pushed"], pulled=summary["pulled"])
    if not summary["ok"]:
        return {"error": "anti-entropy incomplete", "report": summary}
    return summary
