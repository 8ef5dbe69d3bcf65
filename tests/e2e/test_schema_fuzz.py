"""A bounded schemathesis run over OpenAI's own description of the endpoints: requests
generated from the spec (valid and not) never get a 5xx, every error is OpenAI's error
body, every success matches the spec's response schema, and the server keeps serving."""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.transport import Response

from tests.conftest import MODEL

SPECS = os.path.join(os.path.dirname(__file__), "..", "spec")
SCHEMA = schemathesis.openapi.from_path(os.path.join(SPECS, "chat-openapi.yaml"))
RESPONSES = schemathesis.openapi.from_path(os.path.join(SPECS, "responses-openapi.yaml"))
# The Responses and Conversations operations this server has (input_tokens and compact are not served yet).
SERVED = {(path, method) for path, methods in RESPONSES.items() for method in methods}
SERVED -= {("/responses/input_tokens", "post"), ("/responses/compact", "post")}
OPERATIONS = [(SCHEMA, path, method) for path, methods in SCHEMA.items() for method in methods]
OPERATIONS += [(RESPONSES, path, method) for path, methods in RESPONSES.items() for method in methods if (path, method) in SERVED]
EXAMPLES = int(os.environ.get("CHATPORT_FUZZ_EXAMPLES", "60"))


def _bounded(body: object, use_model: bool, named: frozenset[str]) -> object:
    """Generation kept short: a few tokens per choice, few choices; the served model and
    only the fields the spec names in half the cases, so that requests get past model
    lookup and unknown fields (the Responses spec leaves its bodies open)."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    if use_model:
        if "model" in body or "model" in named:
            body["model"] = MODEL
        body = {k: v for k, v in body.items() if k in named or not named}
    # A response's least is 16 tokens (as OpenAI's): answers to the Responses spec stay at that.
    limits = {"max_tokens": 4, "max_completion_tokens": 4, "max_output_tokens": 16}
    for name, most in limits.items():
        if isinstance(body.get(name), int) and not isinstance(body.get(name), bool):
            body[name] = max(min(body[name], most), -1)
    if isinstance(body.get("n"), int) and not isinstance(body.get("n"), bool):
        body["n"] = min(body["n"], 2)
    if "input" in named:  # a Responses body: the spec leaves input out; a request rarely does
        body.setdefault("max_output_tokens", 16)
        if use_model:
            body.setdefault("input", "hi")
    else:
        body.setdefault("max_completion_tokens", 4)
    return body


@pytest.mark.parametrize(("schema", "path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for _, p, m in OPERATIONS])
def test_generated_requests_get_no_5xx_and_answers_match_the_spec(server, schema, path, method):
    operation = schema[path][method]
    named = _body_fields(schema, path, method)
    http = httpx.Client(base_url=server.base_url, timeout=120)
    seen: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy(), use_model=st.booleans())
    def check(case, use_model):
        has_body = method == "post" and type(case.body).__name__ != "NotSet"  # cancel takes none
        body = _bounded(case.body, use_model, named) if has_body else None
        url = "/v1" + case.formatted_path
        response = http.request(
            method.upper(),
            url,
            params=case.query or None,
            json=body if has_body else None,
            headers={"content-type": "application/json"} if method == "post" else None,  # as the SDKs send it
        )
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (url, body, response.text[:500])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"], error
        elif not (isinstance(body, dict) and body.get("stream")):
            case.operation.validate_response(_for_validation(response))

    check()
    print(f"{method.upper()} {path}: statuses {dict(sorted(seen.items()))}")
    assert seen, "no request was sent"
    # Still serving a plain request afterwards.
    ok = http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    )
    assert ok.status_code == 200


def _body_fields(schema, path: str, method: str) -> frozenset[str]:
    """The top-level fields an operation's request body names (through allOf and $ref)."""
    raw = schema.raw_schema
    body = raw["paths"][path][method].get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})

    def fields(node: dict) -> set[str]:
        if "$ref" in node:
            node = raw["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
        out = set(node.get("properties", {}))
        for part in node.get("allOf", []):
            out |= fields(part)
        return out

    return frozenset(fields(body))


def _for_validation(response: httpx.Response) -> Response:
    return Response.from_httpx(response, verify=False)
