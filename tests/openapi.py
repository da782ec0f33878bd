"""Holds HTTP responses to openapi.yaml: the documented status for the route, and the body
against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 uses)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
_URN = "urn:overcast:openapi"


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URN, Resource.from_contents(spec(), default_specification=DRAFT202012))


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The spec's template and operation for a concrete path, e.g. /channels/x/messages."""
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not in openapi.yaml")


def assert_response_conforms(method: str, path: str, status: int, headers: dict[str, str], body: bytes) -> None:
    template, operation = operation_for(method, path)
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template} answered {status}, not documented in openapi.yaml"
    response = _deref(responses[str(status)])
    for name, header in response.get("headers", {}).items():
        if header.get("required"):
            assert name.lower() in {k.lower() for k in headers}, f"{status} must carry {name}"
    content = response.get("content", {})
    if not content:
        assert body == b"", f"{method} {template} {status} must have no body"
        return
    assert headers.get("content-type", "").startswith("application/json")
    schema_ref = content["application/json"]["schema"]["$ref"]
    validator = jsonschema.Draft202012Validator(
        {"$ref": _URN + schema_ref}, registry=_registry(), format_checker=jsonschema.FormatChecker()
    )
    validator.validate(json.loads(body))
