"""Examples of comms/accounts/api.py (API keys) and comms/web/api.py (the public sign-up)."""

from __future__ import annotations

from typing import Any

from comms.openapi_examples._common import API_KEY, NOTICE

_MARKETING_KEY = {
    **API_KEY,
    "id": 6,
    "name": "marketing",
    "role": "marketer",
    "prefix": "cm_zfHkonA",
    "created_at": "2026-01-15T08:05:00Z",
    "last_used_at": "2026-05-20T09:30:00Z",
    "use_count": 2210,
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "comms_accounts_api_list_api_keys": {"responses": {200: [API_KEY, _MARKETING_KEY]}},
    "comms_accounts_api_rotate_api_key": {
        "responses": {
            200: {
                "api_key": {**API_KEY, "prefix": "cm_y04K2pP", "rotated_at": "2026-06-01T07:00:00Z"},
                # Shown once: only its hash is kept.
                "key": "cm_y04K2pPhYqp6C8UmOTGJZXYldyRLf5fVm2qDb00sqCo",
            }
        },
    },
    "comms_accounts_api_revoke_api_key": {
        "responses": {200: {**_MARKETING_KEY, "revoked_at": "2026-06-01T07:05:00Z"}},
    },
    "comms_web_api_signup_form_get": {
        "responses": {
            200: {
                "brand": "fit24",
                "purpose": "fit24-newsletter",
                "name": "Nyhetsbrev fra fit24",
                "channels": ["email", "sms"],
                "notice_version": 2,
                "notice_text": NOTICE["text"],
                "form_token": "eyJwIjo3LCJ2IjoyLCJ0IjoxNzgwMzAwMDAwfQ:1xZ8oG:nBzGmRQFLdVnbVTBOiWVMbHA6aT6YZCsSJcVtpWeKDQ",
                "honeypot_field": "website",
            }
        },
    },
    "comms_web_api_signup_post": {
        "request": {
            "brand": "fit24",
            "purpose": "fit24-newsletter",
            "address": "ola.hansen@example.no",
            "form_token": "eyJwIjo3LCJ2IjoyLCJ0IjoxNzgwMzAwMDAwfQ:1xZ8oG:nBzGmRQFLdVnbVTBOiWVMbHA6aT6YZCsSJcVtpWeKDQ",
            "first_name": "Ola",
            "website": "",
            "lang": "nb",
        },
        "responses": {
            202: {
                "status": "accepted",
                # comms/web/texts.py "signup_sent_lead": the same for a new, known or subscribed address.
                "detail": "Hvis adressen kan motta meldinger fra oss, får du straks en lenke for å "
                "bekrefte påmeldingen. Ingenting sendes før du har bekreftet.",
            }
        },
    },
}
