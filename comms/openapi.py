"""Finishing the OpenAPI document ninja generates, so that it states everything the API does:
which roles may call each operation, every error answer it can give (with the error body's
schema), and an example request and response (comms/openapi_examples/)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, TypeVar

from comms.openapi_examples import ERROR_EXAMPLES, EXAMPLES

API_DESCRIPTION = """\
Consent-enforcing campaign sender: one consent ledger, one gate, every message checked.

**Authentication.** `Authorization: Bearer <key>`. Keys have one role (`marketer`, `staff`,
`dpo`, `system`) and are created with `python manage.py create_api_key --role ROLE --name NAME`.
Each operation says which roles may call it; the sign-up operations need no key.

**The document is the contract.** Every rule on the shape of a request is in its schema
(types, lengths, patterns, ranges, required fields), and a request that breaks one is refused
with 422. Request bodies are JSON objects; unknown fields are refused (a misspelt field is never
silently ignored), nothing is coerced (a number is not a date-time, `"1"` is not a number), and a
date-time is RFC 3339 with a time zone. List operations take `limit` (1-1000, default 100) and
`offset` (0-1,000,000).

**Errors** are JSON `{"detail": ..., "field": ...}`; `field` names the field concerned, dotted
for nested ones (`contacts.2.email`), or is null.

| status | when |
|---|---|
| 400 | the body is not JSON |
| 401 | no key, or not a valid one |
| 403 | the key's role may not call the operation |
| 404 | the resource of the path, or an id or key the request names, does not exist |
| 409 | the request matches the document, but the service refuses it for what it holds: the state of what the request names (a campaign already sent, a purpose without that channel, a key that exists), the clock (a time in the future), the numbering plan (a number that is not a mobile), the length of an SMS with its opt-out line |
| 413 | the body is too large (this service: 2.5 MB of JSON, 10 MB for a proof file; a proxy may answer it first, in HTML) |
| 414 | the query string is too long (this service: 4,096 characters; a proxy may answer it first, in HTML) |
| 422 | the request does not match the document; `detail` lists every error |
| 429 | too many requests (sign-up) |
"""

_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON.",
    401: "No key, or not a valid one.",
    403: "The key's role may not call this operation.",
    404: "The resource of the path, or an id or key the request names (`field`), does not exist.",
    409: "The request matches the document, but conflicts with what the service holds (`field`).",
    413: "The body is too large (a proxy in front may answer this first, in HTML).",
    414: "The query string is too long (a proxy in front may answer this first, in HTML).",
    422: "The request does not match the document: `detail` lists every error, `field` names the first.",
    429: "Too many requests; try again later.",
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}
_ROLE_TEXT = {
    "marketer": "marketer",
    "staff": "staff",
    "dpo": "dpo",
    "system": "system",
}


F = TypeVar("F", bound=Callable[..., Any])


def answers(*, refers: bool = False, conflicts: bool = False) -> Callable[[F], F]:
    """Mark a view whose query names other objects (``refers``: 404 with the field) or whose
    GET can be refused for what the service holds (``conflicts``: 409)."""

    def decorator(view: F) -> F:
        view.__comms_refers__ = refers  # type: ignore[attr-defined]
        view.__comms_conflicts__ = conflicts  # type: ignore[attr-defined]
        return view

    return decorator


def _who(view: Callable[..., Any] | None, public: bool) -> str:
    if public:
        return "**Who may call it:** anyone, no key (a public operation for the brands' sites)."
    roles = getattr(view, "__comms_roles__", None)
    if roles:
        names = ", ".join(f"`{_ROLE_TEXT.get(role, role)}`" for role in roles)
        return f"**Who may call it:** keys with the role {names}."
    return "**Who may call it:** any valid key (every role)."


def _error_response(status: int) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": dict(_ERROR_REF), "example": ERROR_EXAMPLES[status]}
    }
    if status in (413, 414):
        content["text/html"] = {"schema": {"type": "string"}}
    return {"description": _ERROR_DESCRIPTIONS[status], "content": content}


def _is_error_out(answer: dict[str, Any]) -> bool:
    return bool(answer.get("content", {}).get("application/json", {}).get("schema") == _ERROR_REF)


def _statuses(operation: dict[str, Any], method: str, view: Callable[..., Any] | None) -> set[int]:
    """The error answers (with the error body) this operation can give."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    statuses = {414}
    if parameters or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413}
    if operation.get("security"):
        statuses.add(401)
        if getattr(view, "__comms_roles__", None) or getattr(view, "__comms_forbids__", False):
            statuses.add(403)
    if any(p["in"] == "path" for p in parameters) or has_body or getattr(view, "__comms_refers__", False):
        statuses.add(404)
    if method != "get" or getattr(view, "__comms_conflicts__", False):
        statuses.add(409)
    return statuses


def finish_document(document: dict[str, Any], views: dict[str, Callable[..., Any]]) -> None:
    for item in document["paths"].values():
        for method, operation in item.items():
            view = views.get(operation["operationId"])
            public = not operation.get("security")
            text = operation.get("description", "").strip()
            operation["description"] = f"{text}\n\n{_who(view, public)}".strip()
            responses = operation["responses"]
            wanted = _statuses(operation, method, view)
            for status in list(responses):
                if int(status) >= 400 and _is_error_out(responses[status]):
                    del responses[status]
            for status in sorted(wanted):
                if status not in responses:
                    responses[status] = _error_response(status)
            _add_examples(operation)


def _add_examples(operation: dict[str, Any]) -> None:
    examples = EXAMPLES.get(operation["operationId"], {})
    if "request" in examples:
        # JSON, or multipart/form-data for the proof upload.
        for body in operation.get("requestBody", {}).get("content", {}).values():
            body["example"] = copy.deepcopy(examples["request"])
    for status, example in examples.get("responses", {}).items():
        answer = operation["responses"].get(status) or operation["responses"].get(str(status))
        if answer is not None and "application/json" in answer.get("content", {}):
            answer["content"]["application/json"]["example"] = copy.deepcopy(example)
