"""Peers are configuration: OVERCAST_PEERS parsing as replication relies on it."""

from __future__ import annotations

import json

import pytest

from core.errors import ConfigurationError
from core.settings import Settings


def env_with(peers: list[dict[str, str]], **extra: str) -> dict[str, str]:
    return {"OVERCAST_ORIGIN": "aws", "OVERCAST_PEERS": json.dumps(peers), **extra}


def test_three_peers_each_with_its_own_pair_secret() -> None:
    peers = [
        {"name": n, "url": f"https://{n}.example.net/api/", "secret_env": f"S_{n.upper()}"}
        for n in ("azure", "gcp", "oracle")
    ]
    settings = Settings.from_env(env_with(peers, S_AZURE="a" * 32, S_GCP="g" * 32, S_ORACLE="o" * 32))
    assert [p.name for p in settings.peers] == ["azure", "gcp", "oracle"]
    assert settings.peer("oracle") is not None and settings.peer("oracle").secret == "o" * 32  # type: ignore[union-attr]
    assert all(p.url.endswith("/api") for p in settings.peers)  # routes are appended without "//"
    assert "o" * 32 not in repr(settings)


@pytest.mark.parametrize(
    "peers, needle",
    [
        ([{"name": "azure", "url": "https://a.example.net"}] * 2, "twice"),
        ([{"name": "azure", "url": "https://a.example.net/api?code=x"}], "query"),
        ([{"name": "aws", "url": "https://a.example.net"}], "another"),
        ([{"name": "Azure!", "url": "https://a.example.net"}], "origin id"),
        ([{"url": "https://a.example.net"}], "name"),
        (["azure"], "OVERCAST_PEERS"),
    ],
)
def test_bad_peer_lists_are_refused_with_a_reason(peers: list, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        Settings.from_env(env_with(peers, OVERCAST_REPLICATION_SECRET="shared"))


def test_a_missing_pair_secret_names_its_variable() -> None:
    peers = [{"name": "azure", "url": "https://a.example.net", "secret_env": "AZURE_PAIR_SECRET"}]
    with pytest.raises(ConfigurationError, match="AZURE_PAIR_SECRET"):
        Settings.from_env(env_with(peers))
