"""Example requests and answers shown in the OpenAPI document (/api/v1/docs), by operation id.
tests/api/test_openapi_document.py checks that each one matches its schema."""

from __future__ import annotations

from typing import Any

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

_CONTACT = {
    "id": 4711,
    "brand": "fit24",
    "kind": "member",
    "external_id": "m-1001",
    "first_name": "Kari",
    "last_name": "Nordmann",
    "birth_date": "1990-05-17",
    "email": "kari.nordmann@example.no",
    "mobile": "+4741234567",
    "guardian_id": None,
    "home_centre": "oslo-sentrum",
    "tags": ["vip"],
    "purchase_at": "2026-03-01T10:00:00Z",
    "erased_at": None,
    "created_at": "2026-03-01T10:00:00Z",
    "updated_at": "2026-03-01T10:00:00Z",
}
_EVENT = {
    "id": 90210,
    "chain": 3,
    "seq": 1207,
    "contact_id": 4711,
    "brand": "fit24",
    "address_key": "5f0c7c2e9d0b4b8f8a1e3c6d2b7a9f4e1c0d3b6a8e5f2c9d7b4a1e8f3c6d0b2a",
    "channel": "email",
    "purpose": "fit24-newsletter",
    "action": "grant",
    "basis": "consent",
    "source": "front_desk",
    "actor": "self",
    "actor_contact_id": None,
    "recorded_by": "api-key:front-desk",
    "notice_version": 2,
    "confirms_event_id": None,
    "pending_confirmation": False,
    "opt_out_offered": True,
    "reason": "",
    "occurred_at": "2026-05-01T10:00:00Z",
    "recorded_at": "2026-05-01T10:00:01Z",
    "evidence_hash": "",
    "prev_hash": "9a3f…",
    "hash": "c41b…",
}

# Example bodies are sent by the test suite's schemathesis run (its "examples" phase): each one
# must be accepted by the schema it illustrates.
EXAMPLES: dict[str, dict[str, Any]] = {
    "comms_contacts_api_create_contact": {
        "request": {
            "brand": "fit24",
            "kind": "member",
            "external_id": "m-1001",
            "first_name": "Kari",
            "last_name": "Nordmann",
            "birth_date": "1990-05-17",
            "email": "Kari.Nordmann@example.no",
            "mobile": "412 34 567",
            "tags": ["vip"],
        },
        "responses": {201: _CONTACT},
    },
    "comms_contacts_api_get_contact": {"responses": {200: _CONTACT}},
    "comms_contacts_api_patch_contact": {
        "request": {"last_name": "Nordmann-Berg", "mobile": None},
        "responses": {200: {**_CONTACT, "last_name": "Nordmann-Berg", "mobile": None}},
    },
    "comms_contacts_api_record_visit": {
        "request": {
            "kind": "trial_session",
            "occurred_at": "2026-05-01T18:30:00+02:00",
            "external_id": "v-88",
        },
        "responses": {
            201: {
                "id": 311,
                "contact_id": 4711,
                "kind": "trial_session",
                "occurred_at": "2026-05-01T16:30:00Z",
                "centre": None,
                "external_id": "v-88",
                "created_at": "2026-05-01T16:31:00Z",
            }
        },
    },
    "comms_suppression_api_record_consent": {
        "request": {
            "action": "grant",
            "contact_id": 4711,
            "channel": "email",
            "purpose": "fit24-newsletter",
            "source": "front_desk",
            "opt_out_offered": True,
            "occurred_at": "2026-05-01T12:00:00+02:00",
        },
        "responses": {201: _EVENT},
    },
    "comms_suppression_api_record_objection": {
        "request": {"contact_id": 4711, "source": "front_desk"},
        "responses": {201: {**_EVENT, "action": "object", "purpose": None, "channel": ""}},
    },
    "comms_suppression_api_gate_check": {
        "responses": {200: {"allowed": False, "reason": "withdrawn", "event_id": 90211}},
    },
    "comms_suppression_api_add_suppression": {
        "request": {"address": "bounced@example.no", "channel": "email", "reason": "hard_bounce"},
        "responses": {
            201: {
                "id": 17,
                "address_key": "0d1e…",
                "channel": "email",
                "brand": None,
                "reason": "hard_bounce",
                "source_event_id": 90300,
                "created_at": "2026-05-02T08:00:00Z",
                "lifted_at": None,
                "lifted_by_event_id": None,
            }
        },
    },
    "comms_web_api_signup_post": {
        "request": {
            "brand": "fit24",
            "purpose": "fit24-newsletter",
            "address": "ola@example.no",
            "form_token": "eyJwIjo3LCJ2IjoyfQ:1u2v3w:abc",
            "first_name": "Ola",
            "website": "",
            "lang": "nb",
        },
        "responses": {
            202: {
                "status": "accepted",
                "detail": "Sjekk innboksen din: bekreft påmeldingen med lenken vi sendte.",
            }
        },
    },
}
