"""schemathesis hooks for tests/serve_openapi.rs: a check that every error answer of
`canary serve` has the API's JSON error shape, `{"error": {"code", "message", "field"?}}`."""

import json
import re

import schemathesis

CODE = re.compile(r"^[a-z][a-z0-9_]*$")


@schemathesis.check
def json_error_shape(ctx, response, case):
    """Every answer that is not 2xx is JSON `{"error": {"code", "message", "field"?}}`."""
    if response.status_code < 400 or response.request.method == "HEAD":
        return None
    content_type = ", ".join(response.headers.get("content-type", []))
    if not content_type.startswith("application/json"):
        raise AssertionError(
            f"{response.status_code} answered with Content-Type {content_type!r}, not JSON"
        )
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"{response.status_code} answered a body that is not JSON: {e}")
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        raise AssertionError(f"{response.status_code} answered without an `error` object")
    for key in ("code", "message"):
        if not isinstance(error.get(key), str) or not error[key]:
            raise AssertionError(f"`error.{key}` is not a non-empty string")
    if not CODE.match(error["code"]):
        raise AssertionError(f"`error.code` {error['code']!r} is not snake_case")
    if "field" in error and not isinstance(error["field"], str):
        raise AssertionError("`error.field` is not a string")
    extra = set(error) - {"code", "message", "field"}
    if extra:
        raise AssertionError(f"`error` has keys beyond code, message, field: {sorted(extra)}")
    return None
