"""Examples of comms/contacts/api.py: brands, contacts, their import and visits."""

from __future__ import annotations

from typing import Any

from comms.openapi_examples._common import CONTACT

_OLA = {
    **CONTACT,
    "id": 4712,
    "kind": "guest",
    "external_id": "g-2044",
    "first_name": "Ola",
    "last_name": "Hansen",
    "birth_date": None,
    "email": "ola.hansen@example.no",
    "mobile": "+4791234567",
    "home_centre": "bergen-sentrum",
    "tags": [],
    "purchase_at": None,
    "created_at": "2026-04-12T15:20:00Z",
    "updated_at": "2026-04-12T15:20:00Z",
}
_VISIT = {
    "id": 311,
    "contact_id": 4711,
    "kind": "trial_session",
    "occurred_at": "2026-05-01T16:30:00Z",
    "centre": "oslo-sentrum",
    "external_id": "v-88",
    "created_at": "2026-05-01T16:31:00Z",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "comms_contacts_api_list_brands": {
        "responses": {
            200: [
                {
                    "key": "fit24",
                    "name": "FIT24",
                    "sms_sender": "FIT24",
                    "email_from": "post@fit24.example.no",
                    "centres": ["bergen-sentrum", "oslo-sentrum", "trondheim-solsiden"],
                },
                {
                    "key": "klinikk24",
                    "name": "Klinikk24",
                    "sms_sender": "Klinikk24",
                    "email_from": "post@klinikk24.example.no",
                    "centres": ["oslo-majorstuen"],
                },
            ]
        },
    },
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
            "home_centre": "oslo-sentrum",
            "tags": ["vip"],
            "purchase_at": "2026-03-01T11:00:00+01:00",
        },
        "responses": {201: CONTACT},
    },
    "comms_contacts_api_list_contacts": {"responses": {200: {"items": [CONTACT, _OLA], "count": 2}}},
    "comms_contacts_api_import_contacts": {
        "request": {
            "contacts": [
                {
                    "brand": "fit24",
                    "kind": "member",
                    "external_id": "m-1001",
                    "first_name": "Kari",
                    "last_name": "Nordmann",
                    "email": "kari.nordmann@example.no",
                    "mobile": "+47 412 34 567",
                    "home_centre": "oslo-sentrum",
                },
                {
                    "brand": "fit24",
                    "kind": "guest",
                    "external_id": "g-2044",
                    "first_name": "Ola",
                    "last_name": "Hansen",
                    "email": "ola.hansen@example.no",
                    "home_centre": "bergen-sentrum",
                },
            ]
        },
        "responses": {200: {"created": 1, "updated": 1, "unchanged": 0, "errors": []}},
    },
    "comms_contacts_api_get_contact": {"responses": {200: CONTACT}},
    "comms_contacts_api_patch_contact": {
        "request": {"last_name": "Nordmann-Berg", "mobile": None},
        "responses": {
            200: {
                **CONTACT,
                "last_name": "Nordmann-Berg",
                "mobile": None,
                "updated_at": "2026-05-03T07:45:00Z",
            }
        },
    },
    "comms_contacts_api_record_visit": {
        "request": {
            "kind": "trial_session",
            "occurred_at": "2026-05-01T18:30:00+02:00",
            "centre": "oslo-sentrum",
            "external_id": "v-88",
        },
        # 201 records it; 200 when the visit with that external_id is already recorded.
        "responses": {201: _VISIT, 200: _VISIT},
    },
    "comms_contacts_api_list_visits": {
        "responses": {
            200: {
                "items": [  # newest first
                    {
                        **_VISIT,
                        "id": 402,
                        "kind": "check_in",
                        "occurred_at": "2026-05-06T05:58:00Z",
                        "external_id": "v-131",
                        "created_at": "2026-05-06T05:58:03Z",
                    },
                    _VISIT,
                ],
                "count": 2,
            }
        }
    },
}
