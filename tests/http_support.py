"""Real HTTP requests to a server on 127.0.0.1, and the check of an answer against the OpenAPI document."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from edge.outputs.http_api import OPENAPI_PATH

OPENAPI = json.loads(OPENAPI_PATH.read_text())


def request(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def check_against_openapi(path_template: str, status: int, headers: dict[str, str], body: bytes) -> Any:
    """Validate a real answer against the schema the OpenAPI document gives for it."""
    from jsonschema import Draft202012Validator

    answer = OPENAPI["paths"][path_template]["get"]["responses"][str(status)]
    content_type = headers["Content-Type"].split(";")[0]
    assert content_type in answer["content"], f"{path_template} {status}: undocumented type {content_type}"
    if content_type != "application/json":
        return body
    data = json.loads(body)
    schema = {**answer["content"][content_type]["schema"], "components": OPENAPI["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=str)
    assert not errors, f"{path_template} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"
    return data
