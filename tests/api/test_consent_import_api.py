"""POST /consents/import: bulk grants and withdrawals for system and dpo keys, idempotent by
external_key; bad rows are listed with index and field, good rows are kept."""

from __future__ import annotations

from typing import Any

from comms.suppression.models import ConsentEvent


def _row(contact_id: int, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_key": key,
        "contact_id": contact_id,
        "channel": "email",
        "purpose": "fit24-newsletter",
        "occurred_at": "2024-05-01T10:00:00+02:00",
        **extra,
    }


def test_it_imports_good_rows_lists_bad_ones_and_adds_nothing_on_a_resend(api, purpose, make_contact):
    ada, bo = make_contact(), make_contact()
    rows = [_row(ada.pk, "k1"), _row(bo.pk, "k2", purpose="unknown-purpose"), _row(bo.pk, "k3")]
    response = api("system").post("/consents/import", {"rows": rows})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["unchanged"]) == (2, 0)
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(1, "purpose")]
    assert ConsentEvent.objects.count() == 2
    check = api("marketer").get("/check", contact_id=ada.pk, channel="email", purpose="fit24-newsletter")
    assert check.json()["allowed"] is True

    again = api("dpo").post("/consents/import", {"rows": rows})
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 2
    assert ConsentEvent.objects.count() == 2


def test_only_system_and_dpo_keys_may_import_and_bad_input_is_a_422(api, purpose, contact):
    for role in ("staff", "marketer"):
        assert api(role).post("/consents/import", {"rows": [_row(contact.pk, "x")]}).status_code == 403
    response = api("system").post(
        "/consents/import", {"rows": [_row(contact.pk, "x", occurred_at="not a date")]}
    )
    assert response.status_code == 422
    assert ConsentEvent.objects.count() == 0
