"""The single-pass GET that `bench gcp` measures beside HttpApp.handle does the handler's work on a
real Firestore emulator: the same bytes for a message that exists, the same refusals for one that
does not or a channel that is not one. A reference that skipped a check or the read would make its
ratio meaningless."""

from __future__ import annotations

from typing import Any

import pytest

import handlers.gcp
from bench.single_pass_reference import build_gcp_get
from core.errors import NotFound, ValidationError
from core.http import Request
from tests.fixtures.oidc import AUTH_OFF

pytestmark = pytest.mark.emulator("firestore")
TRACE = "105445aa7843bc8bf206b12000100000"


def get(path: str, request_id: str = TRACE) -> Request:
    return Request("GET", path, {}, {"x-cloud-trace-context": f"{TRACE}/1;o=1"}, b"", request_id=request_id)


def test_the_single_pass_get_answers_what_the_app_answers(firestore_db: Any) -> None:
    overcast = handlers.gcp.build({"OVERCAST_REGION": "europe-west1", **AUTH_OFF}, client=firestore_db)
    try:
        single_pass = build_gcp_get(overcast.app, overcast.store)
        created = overcast.service.post("ref", "ada", "Hello").message
        request = get(f"/channels/ref/messages/{created.id}")
        ours = overcast.app.handle(request)
        assert ours.status == 200
        assert single_pass(request) == (ours.body, ours.status, ours.headers)
        # Without the platform's id both make one up; the shape of the answer stays the same.
        body, status, headers = single_pass(get(f"/channels/ref/messages/{created.id}", request_id=""))
        assert (body, status) == (ours.body, 200) and headers["x-request-id"] != TRACE
        with pytest.raises(NotFound):
            single_pass(get("/channels/ref/messages/" + "0" * 26))
        with pytest.raises(ValidationError):
            single_pass(get("/channels/Ref!/messages/" + "0" * 26))
    finally:
        overcast.store.close()
