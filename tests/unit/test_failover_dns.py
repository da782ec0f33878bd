"""The DNS data plane: Route 53's failover rule, TTLs, and a real UDP/TCP server on loopback
queried with dnspython (the same client the load generator uses)."""

from __future__ import annotations

from collections.abc import Iterator

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from failover.dns_server import FailoverDnsServer, FailoverResolver, choose
from failover.loadgen import DnsClientResolver
from failover.route53_setup import FailoverRecord

NAME = "api.example.com."
PRIMARY = FailoverRecord(NAME, "A", "PRIMARY", "aws-primary", 60, ("127.0.0.2",), "hc-primary")
SECONDARY = FailoverRecord(NAME, "A", "SECONDARY", "azure-secondary", 60, ("127.0.0.3",), None)


def health(**states: bool) -> dict[str, bool]:
    return states


@pytest.mark.parametrize(
    ("primary_ok", "secondary_ok", "expected"),
    [(True, True, "PRIMARY"), (False, True, "SECONDARY"), (True, False, "PRIMARY"), (False, False, "PRIMARY")],
)
def test_failover_rule(primary_ok: bool, secondary_ok: bool, expected: str) -> None:
    secondary = FailoverRecord(NAME, "A", "SECONDARY", "azure-secondary", 60, ("127.0.0.3",), "hc-secondary")
    states = {"hc-primary": primary_ok, "hc-secondary": secondary_ok}
    chosen = choose([PRIMARY, secondary], lambda check: states.get(check or "", True))
    assert chosen is not None and chosen.role == expected


def test_record_without_health_check_is_healthy() -> None:
    chosen = choose([PRIMARY, SECONDARY], lambda check: check is None)
    assert chosen is SECONDARY


class Switchable:
    def __init__(self) -> None:
        self.primary_healthy = True
        self.records = [PRIMARY, SECONDARY]
        self.reads = 0

    def is_healthy(self, check: str | None) -> bool:
        return self.primary_healthy if check == "hc-primary" else True

    def read(self) -> list[FailoverRecord]:
        self.reads += 1
        return list(self.records)


@pytest.fixture
def state() -> Switchable:
    return Switchable()


@pytest.fixture
def server(state: Switchable) -> Iterator[FailoverDnsServer]:
    resolver = FailoverResolver(state.read, state.is_healthy, scale=0.1, refresh_s=0.0, zone="example.com")
    with FailoverDnsServer(resolver, "127.0.0.1", 0) as server:
        yield server


def ask(server: FailoverDnsServer, name: str, rdtype: str = "A", tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, "127.0.0.1", port=server.port, timeout=2)


def test_answers_primary_then_secondary_with_scaled_ttl(server: FailoverDnsServer, state: Switchable) -> None:
    response = ask(server, "api.example.com")
    assert [str(r) for r in response.answer[0]] == ["127.0.0.2"]
    assert response.answer[0].ttl == 6  # 60 s x 0.1
    assert response.flags & dns.flags.AA
    state.primary_healthy = False
    response = ask(server, "API.example.com", tcp=True)  # case-insensitive, and over TCP
    assert [str(r) for r in response.answer[0]] == ["127.0.0.3"]
    roles = [a.role for a in server.resolver.answers]
    assert roles == ["PRIMARY", "SECONDARY"]


def test_records_are_re_read(server: FailoverDnsServer, state: Switchable) -> None:
    state.records = [FailoverRecord(NAME, "A", "PRIMARY", "aws-primary", 60, ("127.0.0.9",), "hc-primary"), SECONDARY]
    assert [str(r) for r in ask(server, "api.example.com").answer[0]] == ["127.0.0.9"]


def test_cname_records(server: FailoverDnsServer, state: Switchable) -> None:
    state.records = [
        FailoverRecord(NAME, "CNAME", "PRIMARY", "aws-primary", 60, ("aws.api.example.com",), "hc-primary"),
        FailoverRecord(NAME, "CNAME", "SECONDARY", "azure-secondary", 60, ("azure.api.example.com",), None),
    ]
    state.primary_healthy = False
    response = ask(server, "api.example.com")
    assert response.answer[0].rdtype == dns.rdatatype.CNAME
    assert str(response.answer[0][0]).rstrip(".") == "azure.api.example.com"


def test_nxdomain_in_zone_refused_outside(server: FailoverDnsServer) -> None:
    assert ask(server, "other.example.com").rcode() == dns.rcode.NXDOMAIN
    assert ask(server, "api.example.org").rcode() == dns.rcode.REFUSED
    nodata = ask(server, "api.example.com", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer


def test_client_cache_honours_ttl(server: FailoverDnsServer, state: Switchable) -> None:
    client = DnsClientResolver([("127.0.0.1", server.port)])
    assert client.resolve("api.example.com") == "127.0.0.2"
    state.primary_healthy = False
    queries = server.resolver.queries
    assert client.resolve("api.example.com") == "127.0.0.2"  # cached for the TTL (6 s)
    assert server.resolver.queries == queries
    fresh = DnsClientResolver([("127.0.0.1", server.port)])
    assert fresh.resolve("api.example.com") == "127.0.0.3"


def test_refuses_non_loopback_address(state: Switchable) -> None:
    resolver = FailoverResolver(state.read, state.is_healthy)
    with pytest.raises(ValueError, match="loopback"):
        FailoverDnsServer(resolver, "0.0.0.0", 0)
