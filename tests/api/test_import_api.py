"""POST /contacts/import: bulk, idempotent by (brand, external_id), all or nothing, and it never
touches the ledger (DESIGN §7)."""

from __future__ import annotations

from typing import Any

from comms.contacts.models import Contact
from comms.suppression import services as ledger
from comms.suppression.models import ChainHead, ConsentEvent, Suppression


def rows() -> list[dict[str, Any]]:
    return [
        {
            "brand": "fit24",
            "kind": "member",
            "external_id": "m-1",
            "first_name": "Kari",
            "email": "Kari@Example.no",
            "mobile": "412 34 567",
            "tags": ["vip"],
        },
        {"brand": "fit24", "kind": "guest", "external_id": "g-1", "first_name": "Ola", "home_centre": "oslo"},
        {"brand": "fit24", "kind": "lead", "external_id": "l-1", "email": "lead@example.no"},
    ]


def snapshot() -> list[tuple[Any, ...]]:
    return sorted(
        Contact.objects.values_list(
            "id", "external_id", "kind", "first_name", "email", "mobile", "home_centre_id", "updated_at"
        )
    )


def ledger_state() -> tuple[Any, ...]:
    return (
        ConsentEvent.objects.count(),
        list(ChainHead.objects.values_list("chain", "seq", "hash")),
        list(Suppression.objects.values_list("id", "lifted_at")),
    )


def test_import_creates_normalised_contacts(api, brand):
    response = api("system").post("/contacts/import", {"contacts": rows()})
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 3, "updated": 0, "unchanged": 0, "errors": []}
    kari = Contact.objects.get(external_id="m-1")
    assert (kari.email, kari.mobile, kari.first_name) == ("kari@example.no", "+4741234567", "Kari")
    assert list(kari.tags.values_list("name", flat=True)) == ["vip"]
    assert Contact.objects.get(external_id="g-1").home_centre is not None


def test_re_import_is_idempotent(api, brand):
    assert api("system").post("/contacts/import", {"contacts": rows()}).status_code == 200
    before = snapshot()
    response = api("system").post("/contacts/import", {"contacts": rows()})
    assert response.status_code == 200
    assert response.json() == {"created": 0, "updated": 0, "unchanged": 3, "errors": []}
    assert snapshot() == before  # not even updated_at moved


def test_a_changed_row_updates_only_that_contact(api, brand):
    api("system").post("/contacts/import", {"contacts": rows()})
    changed = rows()
    changed[0]["first_name"] = "Kari Anne"
    changed[1]["tags"] = ["trial"]
    response = api("system").post("/contacts/import", {"contacts": changed})
    assert response.json() == {"created": 0, "updated": 2, "unchanged": 1, "errors": []}
    assert Contact.objects.get(external_id="m-1").first_name == "Kari Anne"
    assert list(Contact.objects.get(external_id="g-1").tags.values_list("name", flat=True)) == ["trial"]
    assert Contact.objects.count() == 3


def test_one_bad_row_rejects_the_whole_batch_listing_every_bad_row(api, brand):
    api("system").post("/contacts/import", {"contacts": rows()})
    before = snapshot()
    batch = rows()
    batch[0]["first_name"] = "Changed"  # a good row that must not be written either
    batch[1]["mobile"] = "22 22 22 22"  # landline
    batch.append({"brand": "nope", "kind": "member", "external_id": "x-1"})
    batch.append({"brand": "fit24", "kind": "member", "external_id": "x-3"})  # good, new
    batch.append({"brand": "fit24", "kind": "member", "external_id": "x-3"})  # twice in this import
    response = api("system").post("/contacts/import", {"contacts": batch})
    # Every row matches the document; the service refuses some: 409 listing each of them.
    assert response.status_code == 409, response.content
    detail = response.json()["detail"]
    assert [error["loc"] for error in detail] == [
        ["body", "contacts", 1, "mobile"],
        ["body", "contacts", 3, "brand"],
        ["body", "contacts", 5, "external_id"],
    ]
    assert response.json()["field"] == "contacts.1.mobile"
    assert all(error["msg"] for error in detail)
    assert snapshot() == before
    assert not Contact.objects.filter(external_id="x-3").exists()


def test_a_schema_error_in_one_row_names_its_index(api, brand):
    batch = rows()
    batch[2]["purchase_at"] = "2026-01-01T10:00:00"  # naive
    batch.append({"brand": "fit24", "kind": "member", "external_id": "x-2", "email": "not-an-email"})
    batch.append({"brand": "fit24", "kind": "member"})  # no external_id
    response = api("system").post("/contacts/import", {"contacts": batch})
    assert response.status_code == 422
    assert [error["loc"][:5] for error in response.json()["detail"]] == [
        ["body", "payload", "contacts", 2, "purchase_at"],
        ["body", "payload", "contacts", 3, "email"],
        ["body", "payload", "contacts", 4, "external_id"],
    ]
    assert response.json()["field"] == "contacts.2.purchase_at"
    assert not Contact.objects.exists()


def test_import_never_touches_the_ledger(api, brand, purpose, staff):
    api("system").post("/contacts/import", {"contacts": rows()})
    kari = Contact.objects.get(external_id="m-1")
    ledger.consent_grant(
        contact=kari, channel="email", purpose=purpose, basis="consent", source="front_desk", principal=staff
    )
    ledger.consent_withdraw(
        contact=kari, channel=None, purpose=None, source="unsubscribe_link", principal=staff
    )
    before = ledger_state()
    assert Suppression.objects.filter(lifted_at__isnull=True).exists()

    changed = rows()
    changed[0]["email"] = "kari.new@example.no"
    changed[0]["first_name"] = "Kari Anne"
    changed.append({"brand": "fit24", "kind": "member", "external_id": "m-2", "email": "new@example.no"})
    response = api("system").post("/contacts/import", {"contacts": changed})
    assert response.json() == {"created": 1, "updated": 1, "unchanged": 2, "errors": []}
    assert ledger_state() == before
    # The withdrawal still holds for the person after the import.
    check = api("system").get("/check", contact_id=kari.pk, channel="sms", purpose=purpose.key).json()
    assert check["allowed"] is False


def test_import_limits_and_roles(api, brand, settings):
    assert api("system").post("/contacts/import", {"contacts": []}).status_code == 422
    # The document states the limit (COMMS_IMPORT_MAX_ROWS when the service started): 5000.
    too_many = [{"brand": "fit24", "kind": "lead", "external_id": f"x-{i}"} for i in range(5001)]
    response = api("system").post("/contacts/import", {"contacts": too_many})
    assert response.status_code == 422
    assert response.json()["field"] == "contacts"
    forbidden = api("marketer").post("/contacts/import", {"contacts": rows()})
    assert forbidden.status_code == 403
    assert not Contact.objects.exists()
