"""Example requests and answers shown in the OpenAPI document (/api/v1/docs), by operation id:
one module per router, objects several operations answer in _common. Every operation has an
example of its request body (when it takes one) and of each success answer;
tests/api/test_openapi_document.py checks that, and that each example matches its schema."""

from __future__ import annotations

from typing import Any

from comms.openapi_examples import accounts, campaigns, contacts, rights, suppression

ERROR_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {"detail": "Cannot parse request body", "field": None},
    401: {"detail": "Unauthorized", "field": None},
    403: {"detail": "this needs one of the roles: dpo, staff, system", "field": None},
    404: {"detail": "unknown contact 4711", "field": "contact_id"},
    409: {"detail": "purpose 'fit24-newsletter' does not allow sms", "field": "channel"},
    413: {"detail": "the request body is larger than this service accepts", "field": None},
    414: {"detail": "the query string is longer than 4096 characters", "field": None},
    422: {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body", "payload", "occurred_at"],
                "msg": "Value error, must be an RFC 3339 date-time with a time zone in the years "
                "1900-2999, e.g. 2026-05-01T10:00:00+02:00",
            }
        ],
        "field": "occurred_at",
    },
    429: {"detail": "Too many requests.", "field": None},
}

# Example bodies are sent by the test suite's schemathesis run (its "examples" phase): each one
# must be accepted by the schema it illustrates.
EXAMPLES: dict[str, dict[str, Any]] = {
    **contacts.EXAMPLES,
    **suppression.EXAMPLES,
    **campaigns.EXAMPLES,
    **rights.EXAMPLES,
    **accounts.EXAMPLES,
}
