"""Objects that several operations answer (a contact, a consent event, a campaign...), written
once so that the examples agree with each other: contact 4711 is Kari Nordmann of fit24, who
gave her e-mail consent to fit24-newsletter in event 90210, and campaign 52 is sent to her.

Date-times are written as the API emits them: in UTC, with Z."""

from __future__ import annotations

from typing import Any

# Keyed hashes are 64 hex characters (HMAC-SHA-256 of the address; SHA-256 of the event).
KARI_EMAIL_KEY = "5f0c7c2e9d0b4b8f8a1e3c6d2b7a9f4e1c0d3b6a8e5f2c9d7b4a1e8f3c6d0b2a"
KARI_MOBILE_KEY = "263b1a70b004e18d103a1ec650817a10434488ccb188a7258c844bdd7522d415"
BOUNCED_KEY = "0d1e9b7f3c2a4e6d8f0b1a3c5e7d9f2b4a6c8e0d1f3b5a7c9e2d4f6b8a0c1e3d"
PROOF_SHA256 = "3b7e1f9a2c4d6e8f0a1b3c5d7e9f2a4b6c8d0e1f3a5b7c9d2e4f6a8b0c1d3e5f"

CONTACT: dict[str, Any] = {
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

NOTICE: dict[str, Any] = {
    "version": 2,
    "text": "fit24 sender deg nyhetsbrev med tilbud og nyheter fra sentrene, inntil to ganger i "
    "måneden. Du kan melde deg av når du vil, med lenken nederst i hver e-post.",
    "created_at": "2026-02-01T09:00:00Z",
}

PURPOSE: dict[str, Any] = {
    "id": 7,
    "brand": "fit24",
    "key": "fit24-newsletter",
    "name": "Nyhetsbrev fra fit24",
    "channels": ["email", "sms"],
    "allows_soft_opt_in": False,
    "marketing": True,
    "min_notice_version": None,
    "consent_lifetime_days": 730,
    "notice": NOTICE,
}

EVENT: dict[str, Any] = {
    "id": 90210,
    "chain": 3,
    "seq": 1207,
    "contact_id": 4711,
    "brand": "fit24",
    "address_key": KARI_EMAIL_KEY,
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
    "recorded_at": "2026-05-01T10:00:01.204Z",
    "evidence_hash": "",
    "prev_hash": "9a3f5c1e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a",
    "hash": "c41b8e2f6a0d4c7e9b1f3a5d7c9e2b4f6a8d0c1e3b5f7a9d2c4e6b8f0a1d3c5e",
}

SUPPRESSION: dict[str, Any] = {
    "id": 17,
    "address_key": BOUNCED_KEY,
    "channel": "email",
    "brand": None,
    "reason": "hard_bounce",
    "source_event_id": 90300,
    "created_at": "2026-05-02T08:00:00Z",
    "lifted_at": None,
    "lifted_by_event_id": None,
}

CAMPAIGN: dict[str, Any] = {
    "id": 52,
    "brand": "fit24",
    "name": "Sommertilbud juni 2026",
    "channel": "email",
    "provider": "lifevision",
    "purpose": "fit24-newsletter",
    "audience": {"kinds": ["member"], "centres": ["oslo-sentrum", "bergen-sentrum"]},
    "subject": "{first_name}, sommeren er din: tre måneder for to",
    "html": "<p>Hei {first_name}!</p><p>Tren hele sommeren: tre måneder for prisen av to.</p>",
    "text": "Hei {first_name}! Tren hele sommeren: tre måneder for prisen av to.",
    "sms_max_segments": 2,
    "send_at": None,
    "status": "draft",
    "status_detail": "",
    "state": "draft",
    "provider_paused_since": None,
    "created_by": "api-key:marketing",
    "created_at": "2026-05-20T09:15:00Z",
    "started_at": None,
    "finished_at": None,
    "counts": {"total": 0, "by_status": {}, "by_reason": {}},
    "failures": {"count": 0, "by_reason": {}},
}

SENDING: dict[str, Any] = {
    **CAMPAIGN,
    "send_at": "2026-06-01T06:00:00Z",
    "status": "sending",
    "state": "sending",
    "started_at": "2026-06-01T06:00:02Z",
    "counts": {
        "total": 1840,
        "by_status": {"queued": 1210, "sent": 382, "denied": 248},
        "by_reason": {
            "queued": {"-": 1210},
            "sent": {"consent": 382},
            "denied": {"no_consent": 201, "withdrawn": 31, "suppressed:hard_bounce": 16},
        },
    },
}

PREVIEW_JOB: dict[str, Any] = {
    "id": 8,
    "campaign_id": 52,
    "status": "done",
    "total": 48210,
    "decided": 48210,
    "progress": 1.0,
    "audience": 48210,
    "would_send": 41377,
    "would_deny": {"no_consent": 5903, "withdrawn": 702, "suppressed:hard_bounce": 188, "no_address": 40},
    "error": "",
    "created_at": "2026-05-20T09:20:00Z",
    "started_at": "2026-05-20T09:20:01Z",
    "finished_at": "2026-05-20T09:20:38Z",
}

FRESHNESS: dict[str, Any] = {
    "purpose_id": 7,
    "days": 30,
    "until": "2026-06-19T09:30:00Z",
    "falling_out": {"email": [4711, 4712, 5120], "sms": [4712]},
    "falling_out_count": {"email": 3, "sms": 1},
    "already_out": {"email": {"consent_expired": 14, "stale_notice": 2}, "sms": {"consent_expired": 5}},
}

FOLLOWUP_RULE: dict[str, Any] = {
    "id": 3,
    "brand": "fit24",
    "name": "Takk for prøvetimen",
    "trigger": "trial_visit",
    "delay_hours": 24,
    "inactive_days": None,
    "channel": "email",
    "purpose": "fit24-newsletter",
    "subject": "Takk for prøvetimen, {first_name}",
    "html": "",
    "text": "Hei {first_name}! Takk for prøvetimen på {centre}. Bli medlem denne uka: første måned gratis.",
    "active": True,
    "campaign_id": 61,
    "created_at": "2026-04-10T12:00:00Z",
}

API_KEY: dict[str, Any] = {
    "id": 5,
    "name": "front-desk",
    "role": "staff",
    "prefix": "cm_QeyrFBU",
    "created_at": "2026-01-15T08:00:00Z",
    "last_used_at": "2026-05-01T10:00:01Z",
    "rotated_at": None,
    "revoked_at": None,
    "use_count": 18422,
}

MESSAGE: dict[str, Any] = {
    "delivery_id": 700431,
    "kind": "campaign",
    "campaign_id": 52,
    "campaign": "Sommertilbud juni 2026",
    "followup_rule_id": None,
    "channel": "email",
    "purpose": "fit24-newsletter",
    "provider": "lifevision",
    "status": "delivered",
    "reason": "consent",
    "decision_event_id": 90210,
    "created_at": "2026-06-01T06:00:02Z",
    "decided_at": "2026-06-01T06:00:05Z",
    "deferred_until": None,
    "sent_at": "2026-06-01T06:00:06Z",
    "delivered_at": "2026-06-01T06:00:09Z",
    "provider_id": "lv-9f2c41d7",
    "attempts": 1,
    "last_error": "",
}

REPLY: dict[str, Any] = {
    "reply_id": 212,
    "keyword": "stop",  # she answered STOPP to an SMS
    "text": "Du er nå meldt av SMS fra FIT24. Du får ikke flere tilbud på SMS. Angrer du, svar START.",
    "status": "sent",
    "created_at": "2026-06-03T17:42:10Z",
    "sent_at": "2026-06-03T17:42:11Z",
    "provider_id": "lv-7a13e0b2",
}
