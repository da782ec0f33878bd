"""adapters.http_peer: connections to a peer are kept alive and reused; a connection the peer
closed while idle is replaced without failing the push; a timeout is a failure, sent once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.http_peer import UrllibPeerTransport
from core.errors import Unavailable


class Peer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.connections = 0
        self.requests: list[bytes] = []
        self.close_after_answer = False
        self.delay_s = 0.0
        self.status = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Peer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as runtime/frontdoor.py: no delayed-ACK stall between header and body

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.requests.append(body)
        time.sleep(self.server.delay_s)
        answer = b'{"applied": 1}'
        self.send_response(self.server.status)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.wfile.flush()
        if self.server.close_after_answer:  # an idle timeout, without telling the client
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_pushes_to_one_peer_reuse_one_connection(peer: Peer) -> None:
    transport = UrllibPeerTransport()
    answers = [transport.post(peer.url + "/replication/batch", b"{}", {"x-a": "1"}, 5) for _ in range(5)]
    assert [a.status for a in answers] == [200] * 5 and answers[0].body == b'{"applied": 1}'
    assert peer.connections == 1 and len(peer.requests) == 5


def test_a_connection_the_peer_closed_is_replaced_and_the_push_succeeds(peer: Peer) -> None:
    transport = UrllibPeerTransport()
    peer.close_after_answer = True
    for _ in range(3):
        assert transport.post(peer.url + "/replication/batch", b"{}", {}, 5).status == 200
    assert len(peer.requests) == 3 and peer.connections == 3


def test_an_error_status_is_an_answer_not_an_exception(peer: Peer) -> None:
    peer.status = 503
    answer = UrllibPeerTransport().post(peer.url + "/replication/batch", b"{}", {}, 5)
    assert answer.status == 503


def test_a_timeout_fails_once_and_is_not_sent_again(peer: Peer) -> None:
    transport = UrllibPeerTransport()
    assert transport.post(peer.url + "/replication/batch", b"{}", {}, 5).status == 200
    peer.delay_s = 0.5
    with pytest.raises(Unavailable):
        transport.post(peer.url + "/replication/batch", b"{}", {}, 0.1)
    time.sleep(0.6)
    assert len(peer.requests) == 2  # the timed-out push was not repeated by the transport


def test_an_unreachable_peer_is_unavailable() -> None:
    server = Peer()
    url = server.url
    server.server_close()  # nothing listens there now
    with pytest.raises(Unavailable):
        UrllibPeerTransport().post(url + "/replication/batch", b"{}", {}, 1)
