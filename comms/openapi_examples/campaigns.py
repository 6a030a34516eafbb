"""Examples of comms/campaigns/api.py (campaigns, previews, consent refresh, sending,
deliveries) and comms/campaigns/followups/api.py (follow-up rules)."""

from __future__ import annotations

from typing import Any

from comms.openapi_examples._common import CAMPAIGN, FOLLOWUP_RULE, FRESHNESS, PREVIEW_JOB, SENDING

_SCHEDULED = {**CAMPAIGN, "send_at": "2026-06-01T06:00:00Z", "status": "scheduled", "state": "scheduled"}
_PAUSED = {**SENDING, "status": "paused", "state": "paused"}
_FINISHED = {
    **SENDING,
    "status": "sent_with_failures",
    "status_detail": "12 messages failed (provider_unavailable: 12)",
    "state": "sent with failures",
    "finished_at": "2026-06-01T06:41:10Z",
    "counts": {
        "total": 1840,
        "by_status": {"delivered": 1525, "bounced": 8, "failed": 12, "denied": 295},
        "by_reason": {
            "delivered": {"consent": 1525},
            "bounced": {"consent": 8},
            "failed": {"provider_unavailable": 12},
            "denied": {"no_consent": 201, "withdrawn": 78, "suppressed:hard_bounce": 16},
        },
    },
    "failures": {"count": 12, "by_reason": {"provider_unavailable": 12}},
}
_LISTED = {**CAMPAIGN, "counts": None, "failures": None}
_SPRING_LISTED = {
    **_FINISHED,
    "id": 48,
    "name": "Vårkampanje 2026",
    "send_at": "2026-03-02T07:00:00Z",
    "created_at": "2026-02-25T13:40:00Z",
    "started_at": "2026-03-02T07:00:01Z",
    "finished_at": "2026-03-02T07:38:52Z",
    "counts": None,
    "failures": None,
}
_REFRESH = {
    **CAMPAIGN,
    "id": 57,
    "name": "Fornyelse av samtykke, juni 2026",
    "audience": {"contact_ids": [4711, 4712, 5120]},
    "subject": "Vil du fortsatt høre fra fit24?",
    "html": "",
    "text": "Hei {first_name}! Samtykket ditt til nyhetsbrevet går snart ut. Vil du fortsatt ha "
    "tilbud og nyheter fra oss?",
    "created_at": "2026-05-20T09:30:00Z",
}
_RULE_PATCHED = {**FOLLOWUP_RULE, "delay_hours": 48, "active": False}
_NO_VISIT_RULE = {
    **FOLLOWUP_RULE,
    "id": 4,
    "name": "Savner deg",
    "trigger": "no_visit",
    "delay_hours": 0,
    "inactive_days": 30,
    "channel": "email",
    "subject": "Vi savner deg, {first_name}",
    "text": "Hei {first_name}! Det er en stund siden sist. Book en time med en PT, på oss.",
    "campaign_id": 62,
    "created_at": "2026-04-10T12:05:00Z",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "comms_campaigns_api_create_campaign": {
        "request": {
            "brand": "fit24",
            "name": CAMPAIGN["name"],
            "channel": "email",
            "provider": "lifevision",
            "purpose": "fit24-newsletter",
            "audience": CAMPAIGN["audience"],
            "subject": CAMPAIGN["subject"],
            "html": CAMPAIGN["html"],
            "text": CAMPAIGN["text"],
        },
        "responses": {201: CAMPAIGN},
    },
    "comms_campaigns_api_list_campaigns": {
        # Newest first, without counts (get one campaign for those).
        "responses": {200: {"items": [_LISTED, _SPRING_LISTED], "count": 2}},
    },
    "comms_campaigns_api_get_campaign": {"responses": {200: SENDING}},
    "comms_campaigns_api_patch_campaign": {
        "request": {
            "subject": "{first_name}, tren hele sommeren for prisen av to måneder",
            "audience": {"kinds": ["member"], "centres": ["oslo-sentrum"], "age_min": 18},
        },
        "responses": {
            200: {
                **CAMPAIGN,
                "subject": "{first_name}, tren hele sommeren for prisen av to måneder",
                "audience": {"kinds": ["member"], "centres": ["oslo-sentrum"], "age_min": 18},
            }
        },
    },
    "comms_campaigns_api_preview_campaign": {
        # 200 for an audience small enough to decide inline; 202 with a job above that.
        "responses": {
            200: {
                "audience": 1840,
                "would_send": 1592,
                "would_deny": {
                    "no_consent": 201,
                    "withdrawn": 31,
                    "suppressed:hard_bounce": 12,
                    "no_address": 4,
                },
            },
            202: {
                **PREVIEW_JOB,
                "status": "queued",
                "decided": 0,
                "progress": 0.0,
                "audience": 0,
                "would_send": 0,
                "would_deny": {},
                "started_at": None,
                "finished_at": None,
            },
        },
    },
    "comms_campaigns_api_list_previews": {"responses": {200: {"items": [PREVIEW_JOB], "count": 1}}},
    "comms_campaigns_api_get_preview": {
        "responses": {
            200: {
                **PREVIEW_JOB,
                "status": "running",
                "decided": 20000,
                "progress": 0.4148,
                "audience": 20000,
                "would_send": 17112,
                "would_deny": {"no_consent": 2506, "withdrawn": 301, "suppressed:hard_bounce": 81},
                "finished_at": None,
            }
        },
    },
    "comms_campaigns_api_freshness_preview": {"responses": {200: FRESHNESS}},
    "comms_campaigns_api_refresh_campaign": {
        "request": {
            "days": 30,
            "channel": "email",
            "name": _REFRESH["name"],
            "subject": _REFRESH["subject"],
            "text": _REFRESH["text"],
        },
        # The freshness of the campaign's channel only; its audience is the people falling out.
        "responses": {
            201: {
                "campaign": _REFRESH,
                "freshness": {
                    **FRESHNESS,
                    "falling_out": {"email": [4711, 4712, 5120]},
                    "falling_out_count": {"email": 3},
                    "already_out": {"email": {"consent_expired": 14, "stale_notice": 2}},
                },
            }
        },
    },
    "comms_campaigns_api_schedule_campaign": {
        "request": {"send_at": "2026-06-01T08:00:00+02:00"},
        "responses": {200: _SCHEDULED},
    },
    "comms_campaigns_api_send_campaign": {"responses": {200: SENDING}},
    "comms_campaigns_api_pause_campaign": {"responses": {200: _PAUSED}},
    "comms_campaigns_api_resume_campaign": {"responses": {200: SENDING}},
    "comms_campaigns_api_cancel_campaign": {
        "responses": {
            200: {
                **SENDING,
                "status": "cancelled",
                "state": "cancelled",
                "finished_at": "2026-06-01T06:05:40Z",
            }
        },
    },
    "comms_campaigns_api_retry_failed": {
        "responses": {
            200: {
                "campaign": {
                    **_FINISHED,
                    "status": "sending",
                    "status_detail": "",
                    "state": "sending",
                    "finished_at": None,
                    "counts": {
                        "total": 1840,
                        "by_status": {"delivered": 1525, "bounced": 8, "queued": 12, "denied": 295},
                        "by_reason": {
                            "delivered": {"consent": 1525},
                            "bounced": {"consent": 8},
                            "queued": {"-": 12},  # a queued message has no reason yet
                            "denied": {"no_consent": 201, "withdrawn": 78, "suppressed:hard_bounce": 16},
                        },
                    },
                    "failures": {"count": 0, "by_reason": {}},
                },
                "queued": 12,
            }
        },
    },
    "comms_campaigns_api_list_deliveries": {
        "responses": {
            200: {
                "items": [
                    {
                        "id": 700431,
                        "contact_id": 4711,
                        "channel": "email",
                        "status": "delivered",
                        "reason": "consent",
                        "decision_event_id": 90210,
                        "decided_at": "2026-06-01T06:00:05Z",
                        "external_id": "3f6c2a1e-8b4d-4e7a-9c0f-1d2b3a4c5e6f",
                        "provider_id": "lv-9f2c41d7",
                        "attempts": 1,
                        "last_error": "",
                        "deferred_until": None,
                        "sent_at": "2026-06-01T06:00:06Z",
                        "delivered_at": "2026-06-01T06:00:09Z",
                    },
                    {
                        "id": 700432,
                        "contact_id": 4712,
                        "channel": "email",
                        "status": "denied",
                        "reason": "no_consent",
                        "decision_event_id": None,
                        "decided_at": "2026-06-01T06:00:05Z",
                        "external_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                        "provider_id": "",
                        "attempts": 0,
                        "last_error": "",
                        "deferred_until": None,
                        "sent_at": None,
                        "delivered_at": None,
                    },
                ],
                "count": 2,
            }
        },
    },
    "comms_campaigns_followups_api_list_rules": {
        "responses": {200: {"items": [FOLLOWUP_RULE, _NO_VISIT_RULE], "count": 2}},
    },
    "comms_campaigns_followups_api_create_rule": {
        "request": {
            "brand": "fit24",
            "name": FOLLOWUP_RULE["name"],
            "trigger": "trial_visit",
            "delay_hours": 24,
            "channel": "email",
            "purpose": "fit24-newsletter",
            "subject": FOLLOWUP_RULE["subject"],
            "text": FOLLOWUP_RULE["text"],
        },
        "responses": {201: FOLLOWUP_RULE},
    },
    "comms_campaigns_followups_api_get_rule": {"responses": {200: FOLLOWUP_RULE}},
    "comms_campaigns_followups_api_patch_rule": {
        "request": {"delay_hours": 48, "active": False},
        "responses": {200: _RULE_PATCHED},
    },
    "comms_campaigns_followups_api_contact_followups": {
        "responses": {
            200: [
                {
                    "id": 1502,
                    "rule_id": 3,
                    "rule": FOLLOWUP_RULE["name"],
                    "trigger": "trial_visit",
                    "channel": "email",
                    "purpose": "fit24-newsletter",
                    "visit_id": 311,
                    "anchor_at": "2026-05-01T16:30:00Z",
                    "due_at": "2026-05-02T16:30:00Z",
                    "window_ends_at": "2026-05-31T16:30:00Z",  # anchor + COMMS_FOLLOWUP_WINDOW_DAYS
                    "planned": False,
                    "delivery_id": 700112,
                    "status": "delivered",
                    "reason": "consent",
                    "decided_at": "2026-05-02T16:30:04Z",
                    "deferred_until": None,
                    "sent_at": "2026-05-02T16:30:05Z",
                    "delivered_at": "2026-05-02T16:30:12Z",
                }
            ]
        },
    },
}
