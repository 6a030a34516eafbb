"""POST/GET/PATCH /contacts, the list, visits, and what bad input gets back (DESIGN §7)."""

from __future__ import annotations

from typing import Any

import pytest

from comms.contacts.models import Contact, Visit

PAST = "2025-06-01T10:00:00+02:00"


def locs(response: Any) -> list[list[Any]]:
    """The ``loc`` of every error in a 422 answer."""
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [error["loc"] for error in detail]


def names_field(response: Any, field: str) -> bool:
    """The error names ``field``: as ``field`` (every error), or in a 422's ``loc``s."""
    body = response.json()
    if body.get("field") == field:
        return True
    return isinstance(body["detail"], list) and any(field in loc for loc in locs(response))


def new_contact(api: Any, **fields: Any) -> dict[str, Any]:
    body = {"brand": "fit24", "kind": "member", **fields}
    response = api("staff").post("/contacts", body)
    assert response.status_code == 201, response.content
    return dict(response.json())


# --- create ---------------------------------------------------------------------------------


def test_create_normalises_the_mobile_and_the_email_and_answers_201(api, brand):
    response = api("staff").post(
        "/contacts",
        {
            "brand": "fit24",
            "kind": "member",
            "external_id": "m-1",
            "first_name": "  Kari ",
            "last_name": "Nordmann",
            "birth_date": "1990-05-01",
            "email": "  Kari.Nordmann@Example.NO ",
            "mobile": "412 34 567",
            "home_centre": "oslo",
            "tags": ["VIP", "trial", "vip"],
            "purchase_at": "2026-01-01T10:00:00+01:00",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["mobile"] == "+4741234567"
    assert body["email"] == "kari.nordmann@example.no"
    assert body["first_name"] == "Kari"
    assert body["brand"] == "fit24"
    assert body["home_centre"] == "oslo"
    assert body["tags"] == ["trial", "vip"]
    assert body["external_id"] == "m-1"
    assert body["birth_date"] == "1990-05-01"
    assert body["erased_at"] is None
    stored = Contact.objects.get(pk=body["id"])
    assert (stored.mobile, stored.email) == ("+4741234567", "kari.nordmann@example.no")


@pytest.mark.parametrize(
    "raw", ["412 34 567", "+47 412 34 567", "0047 41234567", "41234567", "(+47) 412-34-567"]
)
def test_every_way_of_writing_a_norwegian_mobile_becomes_e164(api, brand, raw):
    assert new_contact(api, mobile=raw)["mobile"] == "+4741234567"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        # Written like a number, but the numbering plan has no such mobile: 409.
        ("22 22 22 22", 409),  # an Oslo landline: SMS needs a mobile
        ("+47 412 34 567 89 01", 409),
        # Not written like a phone number at all: the schema's pattern refuses it, 422.
        ("12345", 422),
        ("not a phone", 422),
        ("41234567; DROP TABLE", 422),
        ("   ", 422),
    ],
)
def test_a_bad_or_landline_number_is_refused_naming_mobile_and_nothing_is_written(api, brand, raw, status):
    response = api("staff").post("/contacts", {"brand": "fit24", "kind": "member", "mobile": raw})
    assert response.status_code == status, response.content
    assert names_field(response, "mobile")
    assert not Contact.objects.exists()


def test_an_empty_mobile_means_no_mobile(api, brand):
    assert new_contact(api, mobile="")["mobile"] is None


@pytest.mark.parametrize("raw", ["no-at-sign", "a@b", "two@@example.no", "a b@example.no"])
def test_a_bad_email_is_422_naming_email(api, brand, raw):
    response = api("staff").post("/contacts", {"brand": "fit24", "kind": "member", "email": raw})
    assert response.status_code == 422
    assert names_field(response, "email")
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("extra", "field", "status"),
    [
        ({"brand": "no-such-brand"}, "brand", 404),
        ({"home_centre": "bergen"}, "home_centre", 404),
        ({"guardian_id": 987654}, "guardian_id", 404),
        ({"kind": "employee"}, "kind", 422),
        ({"birth_date": "2999-01-01"}, "birth_date", 409),  # in the future: the clock says no
        ({"birth_date": "1899-12-31"}, "birth_date", 422),  # outside the documented years
        ({"tags": ["has space"]}, "tags", 422),
    ],
)
def test_unknown_references_and_bad_values_are_refused_naming_the_field(api, brand, extra, field, status):
    body = {"brand": "fit24", "kind": "member", **extra}
    response = api("staff").post("/contacts", body)
    assert response.status_code == status, response.content
    assert names_field(response, field), locs(response)
    assert not Contact.objects.exists()


def test_a_centre_of_another_brand_is_unknown(api, brand, other_brand):
    response = api("staff").post("/contacts", {"brand": "klinikk24", "kind": "member", "home_centre": "oslo"})
    assert response.status_code == 404
    assert names_field(response, "home_centre")


def test_a_guardian_is_linked_by_id(api, brand):
    parent = new_contact(api, first_name="Parent")
    child = new_contact(api, first_name="Child", birth_date="2016-01-01", guardian_id=parent["id"])
    assert child["guardian_id"] == parent["id"]
    assert Contact.objects.get(pk=child["id"]).guardian_id == parent["id"]


def test_missing_required_fields_are_422_naming_them(api, brand):
    response = api("staff").post("/contacts", {"first_name": "Kari"})
    assert response.status_code == 422
    assert names_field(response, "brand") and names_field(response, "kind")


def test_a_duplicate_external_id_in_the_same_brand_is_409(api, brand, other_brand):
    new_contact(api, external_id="m-7")
    response = api("staff").post("/contacts", {"brand": "fit24", "kind": "guest", "external_id": "m-7"})
    assert response.status_code == 409
    assert "m-7" in response.json()["detail"]
    assert Contact.objects.filter(external_id="m-7").count() == 1
    # The same member-system id in another brand is another person.
    other = api("staff").post("/contacts", {"brand": "klinikk24", "kind": "member", "external_id": "m-7"})
    assert other.status_code == 201


# --- read and rectify -----------------------------------------------------------------------


def test_get_returns_the_contact_and_an_unknown_id_is_404(api, brand):
    created = new_contact(api, email="a@example.no")
    response = api("marketer").get(f"/contacts/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    missing = api("marketer").get("/contacts/987654")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "contact 987654 not found", "field": None}


def test_patch_changes_only_the_given_fields_normalised(api, brand):
    created = new_contact(
        api, first_name="Kari", email="kari@example.no", mobile="41234567", tags=["vip"], external_id="x-1"
    )
    response = api("staff").patch(
        f"/contacts/{created['id']}", {"email": "KARI.N@Example.no", "mobile": "+47 900 00 001"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["email"] == "kari.n@example.no"
    assert body["mobile"] == "+4790000001"
    assert (body["first_name"], body["tags"], body["external_id"]) == ("Kari", ["vip"], "x-1")
    stored = Contact.objects.get(pk=created["id"])
    assert (stored.email, stored.mobile, stored.first_name) == ("kari.n@example.no", "+4790000001", "Kari")


def test_patch_can_clear_a_field_and_replace_the_tags(api, brand):
    created = new_contact(api, email="kari@example.no", tags=["vip", "trial"])
    body = api("staff").patch(f"/contacts/{created['id']}", {"email": None, "tags": ["gold"]}).json()
    assert body["email"] is None
    assert body["tags"] == ["gold"]


def test_patch_with_a_refused_value_changes_nothing(api, brand):
    created = new_contact(api, mobile="41234567", first_name="Kari")
    response = api("staff").patch(
        f"/contacts/{created['id']}", {"first_name": "Kåre", "mobile": "22 22 22 22"}
    )
    assert response.status_code == 409
    assert names_field(response, "mobile")
    stored = Contact.objects.get(pk=created["id"])
    assert (stored.mobile, stored.first_name) == ("+4741234567", "Kari")


def test_patch_to_another_contacts_external_id_is_409(api, brand):
    new_contact(api, external_id="a")
    second = new_contact(api, external_id="b")
    response = api("staff").patch(f"/contacts/{second['id']}", {"external_id": "a"})
    assert response.status_code == 409
    assert Contact.objects.get(pk=second["id"]).external_id == "b"


def test_a_contact_cannot_be_their_own_guardian(api, brand):
    created = new_contact(api)
    response = api("staff").patch(f"/contacts/{created['id']}", {"guardian_id": created["id"]})
    assert response.status_code == 409
    assert names_field(response, "guardian_id")


def test_patch_of_an_unknown_contact_is_404(api, brand):
    response = api("staff").patch("/contacts/987654", {"first_name": "X"})
    assert response.status_code == 404


# --- list -----------------------------------------------------------------------------------


def test_the_list_is_paginated_in_id_order(api, brand):
    ids = [new_contact(api, external_id=f"p-{n}")["id"] for n in range(5)]
    first = api("marketer").get("/contacts", limit=2, offset=0).json()
    assert first["count"] == 5
    assert [c["id"] for c in first["items"]] == ids[:2]
    last = api("marketer").get("/contacts", limit=2, offset=4).json()
    assert [c["id"] for c in last["items"]] == ids[4:]
    assert api("marketer").get("/contacts", limit=0).status_code == 422


def test_the_list_filters_by_brand_kind_and_external_id(api, brand, other_brand):
    member = new_contact(api, kind="member", external_id="m-1")
    guest = new_contact(api, kind="guest", external_id="g-1")
    other = (
        api("staff").post("/contacts", {"brand": "klinikk24", "kind": "member", "external_id": "m-1"}).json()
    )

    def ids(**params: Any) -> list[int]:
        response = api("marketer").get("/contacts", **params)
        assert response.status_code == 200, response.content
        return [c["id"] for c in response.json()["items"]]

    assert ids(brand="fit24") == [member["id"], guest["id"]]
    assert ids(brand="klinikk24") == [other["id"]]
    assert ids(kind="guest") == [guest["id"]]
    assert ids(external_id="m-1") == [member["id"], other["id"]]
    assert ids(brand="fit24", external_id="m-1") == [member["id"]]
    assert ids(brand="nope") == []
    assert api("marketer").get("/contacts", kind="employee").status_code == 422


# --- visits ---------------------------------------------------------------------------------


def test_a_visit_is_recorded_once_per_external_id(api, brand):
    contact = new_contact(api, kind="guest")
    body = {"kind": "trial_session", "occurred_at": PAST, "centre": "oslo", "external_id": "v-1"}
    first = api("staff").post(f"/contacts/{contact['id']}/visits", body)
    assert first.status_code == 201, first.content
    assert first.json()["centre"] == "oslo"
    assert first.json()["contact_id"] == contact["id"]
    again = api("staff").post(f"/contacts/{contact['id']}/visits", {**body, "kind": "check_in"})
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["kind"] == "trial_session"
    assert Visit.objects.filter(contact_id=contact["id"]).count() == 1


def test_visits_are_listed_newest_first(api, brand):
    contact = new_contact(api)
    for when in ["2025-01-01T10:00:00+01:00", "2025-03-01T10:00:00+01:00", "2025-02-01T10:00:00+01:00"]:
        response = api("staff").post(
            f"/contacts/{contact['id']}/visits", {"kind": "check_in", "occurred_at": when}
        )
        assert response.status_code == 201
    listed = api("marketer").get(f"/contacts/{contact['id']}/visits").json()
    assert listed["count"] == 3
    assert [v["occurred_at"][:10] for v in listed["items"]] == ["2025-03-01", "2025-02-01", "2025-01-01"]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"kind": "check_in", "occurred_at": "2025-06-01T10:00:00"}, "occurred_at", 422),  # naive
        ({"kind": "check_in", "occurred_at": "2999-01-01T10:00:00+00:00"}, "occurred_at", 409),  # future
        ({"kind": "check_in", "occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at", 422),  # year 1
        ({"kind": "check_in", "occurred_at": "yesterday"}, "occurred_at", 422),
        ({"kind": "check_in", "occurred_at": 0}, "occurred_at", 422),  # a number is not a date-time
        ({"kind": "check_in", "occurred_at": PAST, "centre": "bergen"}, "centre", 404),
        ({"kind": "swim", "occurred_at": PAST}, "kind", 422),
        ({"kind": "check_in", "occurred_at": PAST, "note": "x"}, "note", 422),  # unknown field
    ],
)
def test_a_bad_visit_is_refused_naming_the_field(api, brand, body, field, status):
    contact = new_contact(api)
    response = api("staff").post(f"/contacts/{contact['id']}/visits", body)
    assert response.status_code == status, response.content
    assert names_field(response, field), locs(response)
    assert not Visit.objects.exists()


def test_visits_of_an_unknown_contact_are_404(api, brand):
    assert (
        api("staff").post("/contacts/987654/visits", {"kind": "check_in", "occurred_at": PAST}).status_code
        == 404
    )
    assert api("staff").get("/contacts/987654/visits").status_code == 404


# --- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"brand": "fit24", "kind": "member", "purchase_at": "2026-01-01T10:00:00"},
        {"brand": "fit24", "kind": "member", "purchase_at": "0001-01-01T00:30:00+01:00"},
        {"brand": "fit24", "kind": "member", "purchase_at": "9999-12-31T23:59:59-05:00"},
    ],
)
def test_naive_or_out_of_range_datetimes_are_422_naming_the_field(api, brand, body):
    response = api("staff").post("/contacts", body)
    assert response.status_code == 422, response.content
    assert names_field(response, "purchase_at")
    assert not Contact.objects.exists()


@pytest.mark.parametrize("raw", ["{", '{"brand": "fit24", "kind": ', "not json", "[" * 10000])
def test_malformed_json_is_400_and_nothing_is_written(api, brand, raw):
    response = api("staff").post("/contacts", raw=raw)
    assert response.status_code == 400
    assert "Cannot parse" in response.json()["detail"]
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "field", ["first_name", "last_name", "email", "mobile", "external_id", "home_centre"]
)
def test_nul_characters_are_422_naming_the_field(api, brand, field):
    response = api("staff").post("/contacts", {"brand": "fit24", "kind": "member", field: "ab\x00c"})
    assert response.status_code == 422, response.content
    assert names_field(response, field)
    assert not Contact.objects.exists()


def test_nul_in_a_query_filter_is_422(api, brand):
    response = api("marketer").get("/contacts", external_id="a\x00b")
    assert response.status_code == 422
    assert names_field(response, "external_id")


def test_overlong_text_is_422_naming_the_field(api, brand):
    response = api("staff").post("/contacts", {"brand": "fit24", "kind": "member", "first_name": "x" * 101})
    assert response.status_code == 422
    assert names_field(response, "first_name")


@pytest.mark.parametrize("huge", [2**63, 2**64, 10**30])
def test_huge_ids_are_422_not_500(api, brand, huge):
    assert api("marketer").get(f"/contacts/{huge}").status_code == 422
    assert api("staff").patch(f"/contacts/{huge}", {"first_name": "X"}).status_code == 422
    assert api("staff").get(f"/contacts/{huge}/visits").status_code == 422
    response = api("staff").post("/contacts", {"brand": "fit24", "kind": "member", "guardian_id": huge})
    assert response.status_code == 422
    assert names_field(response, "guardian_id")
    assert not Contact.objects.exists()


def test_the_largest_id_is_simply_not_found(api, brand):
    assert api("marketer").get(f"/contacts/{2**63 - 1}").status_code == 404
    assert api("marketer").get("/contacts/0").status_code == 422
    assert api("marketer").get("/contacts/-1").status_code == 422


@pytest.mark.parametrize("body", [[None, None], ["first_name"], []])
def test_a_patch_body_that_is_not_an_object_is_422_and_changes_nothing(api, brand, body):
    created = new_contact(api, first_name="Kari")
    response = api("staff").patch(f"/contacts/{created['id']}", body)
    assert response.status_code == 422, response.content
    assert Contact.objects.get(pk=created["id"]).first_name == "Kari"


def test_an_unknown_field_in_a_patch_is_422_naming_it(api, brand):
    created = new_contact(api, first_name="Kari")
    response = api("staff").patch(f"/contacts/{created['id']}", {"first_name": "Kåre", "frist_name": "x"})
    assert response.status_code == 422, response.content
    assert response.json()["field"] == "frist_name"
    assert Contact.objects.get(pk=created["id"]).first_name == "Kari"


def test_an_offset_beyond_what_postgresql_holds_is_stored_in_utc(api, brand):
    contact = new_contact(api)
    body = {"kind": "check_in", "occurred_at": "2025-06-01T23:30:00+23:30"}
    response = api("staff").post(f"/contacts/{contact['id']}/visits", body)
    assert response.status_code == 201, response.content
    assert response.json()["occurred_at"].startswith("2025-06-01T00:00:00")
