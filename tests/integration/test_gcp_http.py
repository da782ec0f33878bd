"""The HTTP function inside the real functions-framework (Flask) app, on the Firestore emulator:
the request mapping details an API walk does not show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import functions_framework
import pytest

import handlers.gcp
from adapters.gcp.events import MAX_READ_BYTES
from tests.fixtures.oidc import AUTH_OFF

pytestmark = pytest.mark.emulator("firestore")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app() -> Any:
    return functions_framework.create_app("http", str(ROOT / "main.py"), "http").test_client()


@pytest.fixture(autouse=True)
def overcast(firestore_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    built = handlers.gcp.build({"OVERCAST_REGION": "europe-west1", **AUTH_OFF}, client=firestore_db)
    monkeypatch.setattr(handlers.gcp.overcast, "_app", built)


def test_request_id_comes_from_the_platform(app: Any) -> None:
    trace = {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1", "Function-Execution-Id": "abc123xyz"}
    assert app.get("/health", headers=trace).headers["x-request-id"] == "105445aa7843bc8bf206b12000100000"
    executed = app.get("/health", headers={"Function-Execution-Id": "abc123xyz"})
    assert executed.headers["x-request-id"] == "abc123xyz"


def test_query_and_path_reach_core(app: Any) -> None:
    for text in ("one", "two", "three"):
        assert app.post("/channels/london/messages", json={"author": "ada", "text": text}).status_code == 201
    page = app.get("/channels/london/messages?limit=2&limit=50")  # first value wins, as on every provider
    assert page.status_code == 200 and len(page.get_json()["items"]) == 2
    assert page.get_json()["served_by"] == {"provider": "gcp", "region": "europe-west1"}


def test_oversized_body_is_refused_before_it_is_read(app: Any) -> None:
    answer = app.post("/channels/london/messages", data=b"x" * (MAX_READ_BYTES + 1), content_type="application/json")
    assert answer.status_code == 413 and answer.get_json()["error"]["code"] == "payload_too_large"


def test_unicode_survives_the_flask_round_trip(app: Any) -> None:
    posted = app.post("/channels/tokyo/messages", json={"author": "Zoë 🚀", "text": "こんにちは 👋"})
    assert posted.status_code == 201
    fetched = app.get(posted.headers["location"])
    assert fetched.get_json()["text"] == "こんにちは 👋" and fetched.get_json()["author"] == "Zoë 🚀"
