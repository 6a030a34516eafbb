"""Examples of comms/rights/api.py: a contact's data export, communication log, erasure and
restriction of processing."""

from __future__ import annotations

from typing import Any

from comms.openapi_examples._common import CONTACT, EVENT, MESSAGE, NOTICE, PROOF_SHA256, REPLY

_LIFEVISION_NOTE = (
    "LifeVision keeps no audience of ours and has no call to forget a recipient: each message "
    "was handed over once. Nothing to propagate; the addresses are suppressed by keyed hash."
)
_MAILCHIMP_NOTE = "not configured: Mailchimp holds nothing from comms"
_FOLLOWUP_MESSAGE = {
    **MESSAGE,
    "delivery_id": 700112,
    "kind": "followup",
    "campaign_id": 61,
    "campaign": "Follow-up: Takk for prøvetimen",  # the rule's own campaign
    "followup_rule_id": 3,
    "created_at": "2026-05-02T16:30:00Z",
    "decided_at": "2026-05-02T16:30:04Z",
    "sent_at": "2026-05-02T16:30:05Z",
    "delivered_at": "2026-05-02T16:30:12Z",
    "provider_id": "lv-51be09aa",
}
_EXPORT_EVENT = {
    key: EVENT[key] for key in EVENT if key not in ("brand", "notice_version", "evidence_hash", "prev_hash")
} | {
    "role": "subject",
    "notice": {"purpose": "fit24-newsletter", "version": 2, "text": NOTICE["text"]},
    "evidence": {"ip": None, "user_agent": "", "proof_sha256": PROOF_SHA256, "redacted_at": None},
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "comms_rights_api_export_contact": {
        "responses": {
            200: {
                "format": "comms-export/1",
                "generated_at": "2026-06-10T11:00:00Z",
                "contact": {key: CONTACT[key] for key in CONTACT if key != "guardian_id"},
                "guardian": {"guardian_id": None, "ward_ids": [4890]},
                "visits": [
                    {
                        "id": 311,
                        "kind": "trial_session",
                        "occurred_at": "2026-05-01T16:30:00Z",
                        "centre": "oslo-sentrum",
                        "external_id": "v-88",
                    }
                ],
                "restricted": False,
                "consent_state": [
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
                        "reason": "withdrawn",  # her STOPP (replies)
                        "event_id": 90388,
                    },
                ],
                "consent_events": [_EXPORT_EVENT],
                "suppressions": [],
                "messages": [MESSAGE, _FOLLOWUP_MESSAGE],
                "replies": [],
                "propagation": {
                    "lifevision": {
                        "status": "configured",
                        "note": _LIFEVISION_NOTE,
                        "messages": [
                            {"delivery_id": 700431, "provider_id": "lv-9f2c41d7", "status": "delivered"},
                            {"delivery_id": 700112, "provider_id": "lv-51be09aa", "status": "delivered"},
                        ],
                    },
                    "mailchimp": {"status": "not configured", "note": _MAILCHIMP_NOTE, "messages": []},
                },
                "rights_log": [
                    {
                        "at": "2026-06-10T11:00:00Z",
                        "actor": "api-key:personvern",
                        "action": "export",
                        "outcome": "ok",
                    }
                ],
            }
        },
    },
    "comms_rights_api_contact_log": {
        "responses": {
            200: {
                "contact_id": 4711,
                "generated_at": "2026-06-10T11:02:00Z",
                "messages": [MESSAGE, _FOLLOWUP_MESSAGE],
                "replies": [REPLY],
            }
        },
    },
    "comms_rights_api_erase_contact": {
        "responses": {
            200: {
                "contact_id": 4711,
                "erased_at": "2026-06-12T09:00:00Z",
                "event_id": 91003,
                "suppressed_addresses": 2,
                "propagation": [
                    {"provider": "lifevision", "status": "nothing_to_do", "note": _LIFEVISION_NOTE},
                    {"provider": "mailchimp", "status": "not_configured", "note": _MAILCHIMP_NOTE},
                ],
            }
        },
    },
    "comms_rights_api_restrict_contact": {
        "responses": {
            201: {
                "contact_id": 4711,
                "restricted": True,
                "event_id": 90950,
                "occurred_at": "2026-06-11T08:00:00Z",
            }
        },
    },
    "comms_rights_api_lift_restriction": {
        "responses": {
            200: {
                "contact_id": 4711,
                "restricted": False,
                "event_id": 90977,
                "occurred_at": "2026-06-11T14:20:00Z",
            }
        },
    },
}
