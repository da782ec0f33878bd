"""The failover client against two real local servers (the API over SQLite, each on its own
loopback port): connection refused, 5xx from a store outage, a primary that accepts but never
answers (hedge), sticking to the secondary, and returning after the primary's deep health
recovers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.http_peer import UrllibPeerTransport
from adapters.local.http_server import LocalHttpServer
from adapters.local.store import SqliteMessageStore
from core.bootstrap import bootstrap
from core.settings import Settings
from overcast_client import ClientError, FailoverClient, Unavailable
from runtime.local import SwitchableStore


@dataclass
class Cloud:
    server: LocalHttpServer
    store: SwitchableStore
    stopped: bool = False

    @property
    def url(self) -> str:
        return self.server.url

    def crash(self) -> None:
        """Stop serving: the port refuses connections."""
        if not self.stopped:
            self.stopped = True
            self.server.stop()


def start_cloud(tmp_path: Path, name: str) -> Cloud:
    settings = Settings.from_env(
        {"OVERCAST_ORIGIN": name, "OVERCAST_AUTH_DISABLED": "true", "OVERCAST_LOG_LEVEL": "ERROR"}
    )
    store = SwitchableStore(SqliteMessageStore(tmp_path / f"{name}.sqlite"))
    overcast = bootstrap(settings, store, UrllibPeerTransport())
    server = LocalHttpServer(overcast.app, "127.0.0.1", 0, workers=4).start_background()
    return Cloud(server, store)


@pytest.fixture
def clouds(tmp_path: Path) -> Iterator[tuple[Cloud, Cloud]]:
    primary, secondary = start_cloud(tmp_path, "aws"), start_cloud(tmp_path, "azure")
    try:
        yield primary, secondary
    finally:
        for cloud in (primary, secondary):
            cloud.crash()


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback port that accepts connections (the kernel's backlog) but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def client(primary: str, secondary: str, **options: float) -> FailoverClient:
    settings = {"timeout_s": 2.0, "hedge_after_s": 0.2, "probe_every_s": 0.05, "recover_after": 2, **options}
    return FailoverClient(primary, secondary, **settings)  # type: ignore[arg-type]


def wait_for(condition: object, deadline_s: float = 15.0) -> bool:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_healthy_primary_serves_everything(clouds: tuple[Cloud, Cloud]) -> None:
    primary, secondary = clouds
    with client(primary.url, secondary.url) as c:
        posted = c.post_message("london", "hello", author="ada")
        reply = c.request("GET", f"/channels/london/messages/{posted['id']}")
        assert reply.status == 200 and reply.endpoint == primary.url and reply.attempts == 1
        assert posted["origin"] == "aws" and c.active == primary.url


def test_connection_refused_fails_over_and_sticks(clouds: tuple[Cloud, Cloud]) -> None:
    primary, secondary = clouds
    switches: list[tuple[str, str]] = []
    with client(primary.url, secondary.url, on_switch=lambda a, b: switches.append((a, b))) as c:  # type: ignore[arg-type]
        primary.crash()
        posted = c.post_message("london", "after the crash", author="ada")
        assert posted["origin"] == "azure"
        assert wait_for(lambda: c.active == secondary.url)
        assert switches == [(primary.url, secondary.url)]
        reply = c.request("GET", f"/channels/london/messages/{posted['id']}")
        assert reply.endpoint == secondary.url and reply.attempts == 1  # straight to the secondary


def test_a_5xx_fails_over_and_the_client_returns_when_deep_health_recovers(clouds: tuple[Cloud, Cloud]) -> None:
    primary, secondary = clouds
    with client(primary.url, secondary.url) as c:
        primary.store.down = True
        reply = c.request("POST", "/channels/london/messages", {"author": "ada", "text": "during the outage"})
        assert reply.status == 201 and reply.endpoint == secondary.url and reply.attempts == 2 and reply.failed == 1
        assert wait_for(lambda: c.active == secondary.url)
        assert not c.primary_healthy()
        primary.store.down = False
        assert wait_for(lambda: c.active == primary.url), "the client never went back to the recovered primary"
        assert c.request("GET", "/health").endpoint == primary.url


def test_a_primary_that_never_answers_is_hedged_and_its_timeout_moves_the_client(
    clouds: tuple[Cloud, Cloud], silent: str
) -> None:
    _, secondary = clouds
    with client(silent, secondary.url, timeout_s=1.0) as c:
        reply = c.request("POST", "/channels/london/messages", {"author": "ada", "text": "hedged"})
        # Answered by the hedge while the primary's own attempt was still waiting: nothing had failed.
        assert reply.status == 201 and reply.endpoint == secondary.url and reply.attempts == 2 and reply.failed == 0
        # A slow answer alone does not move the client; the primary attempt's timeout does.
        assert wait_for(lambda: c.active == secondary.url), "the primary's timeout did not move the client"
        assert c.request("GET", "/health").endpoint == secondary.url


def test_the_same_idempotency_key_goes_to_both_endpoints(clouds: tuple[Cloud, Cloud]) -> None:
    primary, secondary = clouds
    with client(primary.url, secondary.url) as c:
        primary.store.down = True
        first = c.post_message("london", "once", author="ada", idempotency_key="order-1")
        again = c.post_message("london", "once", author="ada", idempotency_key="order-1")
        assert first["id"] == again["id"]


def test_a_4xx_is_the_callers_and_is_not_retried(clouds: tuple[Cloud, Cloud]) -> None:
    primary, secondary = clouds
    with client(primary.url, secondary.url) as c:
        with pytest.raises(ClientError) as raised:
            c.post_message("London!", "bad channel", author="ada")
        assert raised.value.reply.status == 400 and raised.value.reply.attempts == 1
        assert c.active == primary.url


def test_both_endpoints_down_is_unavailable(clouds: tuple[Cloud, Cloud]) -> None:
    primary, secondary = clouds
    with client(primary.url, secondary.url) as c:
        primary.crash()
        secondary.crash()
        with pytest.raises(Unavailable):
            c.get_message("london", "0" * 26)
