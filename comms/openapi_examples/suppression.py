"""Examples of comms/suppression/api.py: purposes and notices, proofs, the consent ledger, the
gate, suppressions and the ledger's verification."""

from __future__ import annotations

from typing import Any

from comms.openapi_examples._common import (
    EVENT,
    KARI_MOBILE_KEY,
    NOTICE,
    PROOF_SHA256,
    PURPOSE,
    SUPPRESSION,
)

_NOTICE_V1 = {
    "version": 1,
    "text": "fit24 sender deg nyhetsbrev med tilbud og nyheter fra sentrene.",
    "created_at": "2025-09-01T08:00:00Z",
}
_NOTICE_V3 = {
    "version": 3,
    "text": "fit24 sender deg nyhetsbrev med tilbud, nyheter og invitasjoner til arrangementer, "
    "inntil to ganger i måneden. Du kan melde deg av når du vil, med lenken nederst i hver "
    "e-post eller ved å svare STOPP på en SMS.",
    "created_at": "2026-05-10T09:00:00Z",
}
_SMS_PENDING = {
    **EVENT,
    "id": 90211,
    "seq": 1208,
    "address_key": KARI_MOBILE_KEY,
    "channel": "sms",
    "source": "web_form",
    "pending_confirmation": True,
    "opt_out_offered": False,
    "occurred_at": "2026-05-01T10:02:00Z",
    "recorded_at": "2026-05-01T10:02:00.318Z",
    "prev_hash": EVENT["hash"],
    "hash": "e7a2c9f4b1d3e5a7c9f0b2d4e6a8c1f3b5d7e9a0c2f4b6d8e1a3c5f7b9d0e2a4",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "comms_suppression_api_list_purposes": {"responses": {200: {"items": [PURPOSE], "count": 1}}},
    "comms_suppression_api_create_purpose": {
        "request": {
            "brand": "fit24",
            "key": "fit24-newsletter",
            "name": "Nyhetsbrev fra fit24",
            "channels": ["email", "sms"],
            "notice_text": _NOTICE_V1["text"],
            "allows_soft_opt_in": False,
            "marketing": True,
            "consent_lifetime_days": 730,
        },
        "responses": {201: {**PURPOSE, "notice": {**_NOTICE_V1, "created_at": "2026-05-20T09:00:00Z"}}},
    },
    "comms_suppression_api_get_purpose": {"responses": {200: PURPOSE}},
    "comms_suppression_api_patch_purpose": {
        "request": {"name": "Nyhetsbrev og tilbud fra fit24", "min_notice_version": 2},
        "responses": {200: {**PURPOSE, "name": "Nyhetsbrev og tilbud fra fit24", "min_notice_version": 2}},
    },
    "comms_suppression_api_list_notices": {"responses": {200: [_NOTICE_V1, NOTICE]}},  # oldest first
    "comms_suppression_api_publish_notice": {
        "request": {"text": _NOTICE_V3["text"]},
        "responses": {201: _NOTICE_V3},
    },
    "comms_suppression_api_upload_proof": {
        # multipart/form-data: the file is the scanned paper form itself (PDF, HEIC, JPEG, PNG, TIFF).
        "request": {"file": "%PDF-1.7 (the signed paper form from the front desk)"},
        "responses": {
            201: {
                "sha256": PROOF_SHA256,
                "size": 184320,
                "content_type": "application/pdf",
                "uploaded_at": "2026-05-01T10:00:00Z",
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
            "evidence": {"proof_sha256": PROOF_SHA256},
        },
        "responses": {
            201: {
                **EVENT,
                "evidence_hash": "14f00337c486ad03627cf8c5254a700765fc5b123936fb18bb6b53ccf2e4c7a3",
            }
        },
    },
    "comms_suppression_api_import_consents": {
        "request": {
            "rows": [
                {
                    "external_key": "lifevision:optin:88213",
                    "brand": "fit24",
                    "contact_external_id": "m-1001",
                    "channel": "sms",
                    "purpose": "fit24-newsletter",
                    "source": "import",
                    "occurred_at": "2024-11-02T17:05:00+01:00",
                },
                {
                    "external_key": "lifevision:optin:88214",
                    "brand": "fit24",
                    "contact_external_id": "m-9999",
                    "channel": "email",
                    "purpose": "fit24-newsletter",
                    "occurred_at": "2024-11-02T17:06:00+01:00",
                },
            ]
        },
        "responses": {
            200: {
                "created": 1,
                "unchanged": 0,
                "errors": [
                    {
                        "index": 1,
                        "external_key": "lifevision:optin:88214",
                        "field": "contact_external_id",
                        "detail": "no contact 'm-9999' in brand 'fit24'",
                    }
                ],
            }
        },
    },
    "comms_suppression_api_record_objection": {
        "request": {"contact_id": 4711, "source": "front_desk", "actor": "self"},
        "responses": {
            201: {
                **EVENT,
                "id": 90412,
                "seq": 1290,
                "action": "object",
                "purpose": None,
                "channel": "",
                "basis": "",
                "notice_version": None,
                "opt_out_offered": False,
                "occurred_at": "2026-06-04T08:10:00Z",
                "recorded_at": "2026-06-04T08:10:00.512Z",
                "prev_hash": "b2d4f6a8c0e1a3c5e7b9d1f3a5c7e9b0d2f4a6c8e1b3d5f7a9c0e2b4d6f8a1c3",
                "hash": "f1e3d5c7b9a0f2e4d6c8b0a1f3e5d7c9b2a4f6e8d0c1b3a5f7e9d2c4b6a8f0e1",
            }
        },
    },
    "comms_suppression_api_contact_consents": {
        "responses": {
            200: {
                "contact_id": 4711,
                "current": [
                    {
                        "purpose": "fit24-newsletter",
                        "channel": "email",
                        "allowed": True,
                        "reason": "consent",
                        "event_id": 90210,
                    },
                    {
                        "purpose": "fit24-newsletter",
                        "channel": "sms",
                        "allowed": False,
                        "reason": "awaiting_confirmation",
                        "event_id": 90211,
                    },
                ],
                "history": [EVENT, _SMS_PENDING],
            }
        },
    },
    "comms_suppression_api_gate_check": {
        "responses": {200: {"allowed": True, "reason": "consent", "event_id": 90210}},
    },
    "comms_suppression_api_list_suppressions": {
        "responses": {200: {"items": [SUPPRESSION], "count": 1}},
    },
    "comms_suppression_api_add_suppression": {
        "request": {"address": "bounced@example.no", "channel": "email", "reason": "hard_bounce"},
        # 201 suppresses it; 200 answers the suppression already active for that address.
        "responses": {201: SUPPRESSION, 200: SUPPRESSION},
    },
    "comms_suppression_api_lift_suppression": {
        "request": {"source": "admin"},
        "responses": {200: {**SUPPRESSION, "lifted_at": "2026-05-09T13:30:00Z", "lifted_by_event_id": 90377}},
    },
    "comms_suppression_api_verify_ledger": {
        "responses": {
            200: {
                "ok": True,
                "events_checked": 1284077,
                "chains": 4,
                "first_broken": None,
                "evidence_mismatches": [],
                "checkpoint_problem": None,
            }
        },
    },
}
