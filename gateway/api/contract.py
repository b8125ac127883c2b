"""The answers every route can give besides its own, written into ``/openapi.json``.

FastAPI documents what a handler declares; some answers come from elsewhere and
are added here, for every route, so a route file cannot forget them:

- every route answers 413 to a body larger than ``api.max_body_bytes``
  (``LimitsAndMetrics`` runs before routing), and one that takes a body 400
  when it cannot be parsed;
- a route behind the bearer token answers 401 without it and 403 with a wrong one;
- a route with parameters or a body answers 422 (``HTTPValidationError``);
- every error answer has a body schema (``ErrorDetail`` unless stated);
- a ``limit`` query parameter is bounded by ``api.max_page`` (the value in force).

A test runs schemathesis against a running gateway to hold the document to
what the gateway really answers.
"""

from __future__ import annotations

from typing import Any

from gateway.api.schemas import ErrorDetail

__all__ = ["complete_contract"]

ERROR_REF = "#/components/schemas/ErrorDetail"
VALIDATION_REF = "#/components/schemas/HTTPValidationError"
METHODS = ("get", "put", "post", "delete", "patch")

_BODY_ANSWERS = {"400": "the body is not parseable as JSON"}
_TOO_LARGE = "the request body is larger than `api.max_body_bytes` (any route, even a GET)"
_TOKEN_ANSWERS = {
    "401": "no bearer token (`Authorization: Bearer <token>`, see `api.token_file`)",
    "403": "the bearer token is not valid",
}


def complete_contract(schema: dict[str, Any], *, max_page: int) -> dict[str, Any]:
    """``schema`` (FastAPI's OpenAPI document) with the cross-cutting answers added."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            if method in METHODS:
                _complete_operation(op, components, max_page)
    return schema


def _complete_operation(op: dict[str, Any], components: dict[str, Any], max_page: int) -> None:
    responses = op.setdefault("responses", {})
    responses.setdefault("413", {"description": _TOO_LARGE})
    if "requestBody" in op:
        for code, text in _BODY_ANSWERS.items():
            responses.setdefault(code, {"description": text})
    if op.get("security"):
        for code, text in _TOKEN_ANSWERS.items():
            responses.setdefault(code, {"description": text})
    if op.get("parameters") or "requestBody" in op:
        responses.setdefault("422", {"description": "Validation Error"})
    for code, answer in responses.items():
        if code.startswith(("4", "5")) and not answer.get("content"):
            ref = VALIDATION_REF if code == "422" else ERROR_REF
            answer["content"] = {"application/json": {"schema": {"$ref": ref}}}
    if any(a["content"]["application/json"]["schema"].get("$ref") == VALIDATION_REF
           for code, a in responses.items() if code == "422"):
        _ensure_validation_schemas(components)
    for param in op.get("parameters", ()):
        if param.get("in") == "query" and param.get("name") == "limit":
            param.setdefault("schema", {})["maximum"] = max_page


def _ensure_validation_schemas(components: dict[str, Any]) -> None:
    """FastAPI adds these only when some route has parameters; keep the $ref valid."""
    from fastapi.openapi.utils import (
        validation_error_definition,
        validation_error_response_definition,
    )

    components.setdefault("ValidationError", validation_error_definition)
    components.setdefault("HTTPValidationError", validation_error_response_definition)
