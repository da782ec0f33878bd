import json

import pytest

from core.errors import ConfigurationError
from core.settings import SETTINGS, Settings, markdown_table


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.provider, settings.region, settings.origin) == ("local", "local", "local")
    assert settings.deep_health_timeout_s == 1.5 and settings.peers == ()


def test_peers_with_per_pair_secrets() -> None:
    peers = [{"name": "azure", "url": "https://board.example.net/api/", "secret_env": "AZ_SECRET"}]
    env = {"OVERCAST_PROVIDER": "aws", "OVERCAST_PEERS": json.dumps(peers), "AZ_SECRET": "s3cret"}
    settings = Settings.from_env(env)
    peer = settings.peer("azure")
    assert peer is not None and peer.url == "https://board.example.net/api" and peer.secret == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    "env, needle",
    [
        ({"OVERCAST_ORIGIN": "Bad Origin"}, "OVERCAST_ORIGIN"),
        ({"OVERCAST_LOG_LEVEL": "LOUD"}, "OVERCAST_LOG_LEVEL"),
        ({"OVERCAST_PAGE_SIZE": "lots"}, "OVERCAST_PAGE_SIZE"),
        ({"OVERCAST_MAX_TEXT_CHARS": "0"}, "OVERCAST_MAX_TEXT_CHARS"),
        ({"OVERCAST_PEERS": "{"}, "OVERCAST_PEERS"),
        ({"OVERCAST_PEERS": '[{"name": "azure", "url": "https://x.example"}]'}, "no secret"),
        (
            {"OVERCAST_PEERS": '[{"name": "local", "url": "https://x.example"}]', "OVERCAST_REPLICATION_SECRET": "s"},
            "another",
        ),
        ({"OVERCAST_PEERS": '[{"name": "azure", "url": "ftp://x"}]', "OVERCAST_REPLICATION_SECRET": "s"}, "http"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert needle in str(info.value)


def test_every_setting_is_documented_in_the_table() -> None:
    table = markdown_table()
    assert all(f"`{s.env}`" in table for s in SETTINGS)
