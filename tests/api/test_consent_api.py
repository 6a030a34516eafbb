"""Purposes and notices, consents, objections, the gate's /check, suppressions and ledger
verification through the API (DESIGN §3 and §7)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from comms.suppression.models import ConsentEvent, ConsentEvidence, Purpose, PurposeNotice, Suppression

NEWSLETTER = "fit24-newsletter"


def locs(response: Any) -> list[list[Any]]:
    detail = response.json()["detail"]
    return [error["loc"] for error in detail] if isinstance(detail, list) else []


def names_field(response: Any, field: str) -> bool:
    """The error names ``field``: as ``field`` (every error), or in a 422's ``loc``s."""
    body = response.json()
    if body.get("field") == field:
        return True
    return isinstance(body["detail"], list) and any(field in loc for loc in locs(response))


# A request the document refuses is 422; an unknown reference 404; what the ledger's rules
# refuse (the request matched the document) 409.
STATUS = {"unknown": 404, "refused": 409, "invalid": 422}


def check(api: Any, contact_id: int, channel: str = "email", purpose: str = NEWSLETTER) -> dict[str, Any]:
    response = api("marketer").get("/check", contact_id=contact_id, channel=channel, purpose=purpose)
    assert response.status_code == 200, response.content
    return dict(response.json())


def grant(api: Any, contact_id: int, **extra: Any) -> Any:
    body = {"action": "grant", "contact_id": contact_id, "channel": "email", "purpose": NEWSLETTER, **extra}
    return api("staff").post("/consents", body)


# --- purposes and notices -------------------------------------------------------------------


def new_purpose(api: Any, **extra: Any) -> dict[str, Any]:
    body = {
        "brand": "fit24",
        "key": "fit24-offers",
        "name": "Offers",
        "channels": ["email"],
        "notice_text": "We send offers.",
        **extra,
    }
    response = api("marketer").post("/purposes", body)
    assert response.status_code == 201, response.content
    return dict(response.json())


def test_create_get_list_and_patch_a_purpose(api, brand, other_brand):
    created = new_purpose(api)
    assert created["brand"] == "fit24"
    assert created["channels"] == ["email"]
    assert created["notice"]["version"] == 1
    assert created["notice"]["text"] == "We send offers."
    assert (created["allows_soft_opt_in"], created["marketing"]) == (False, True)

    assert api("staff").get(f"/purposes/{created['id']}").json() == created
    api("marketer").post(
        "/purposes",
        {"brand": "klinikk24", "key": "k24-news", "name": "N", "channels": ["sms"], "notice_text": "t"},
    )
    everything = api("staff").get("/purposes").json()
    assert [p["key"] for p in everything["items"]] == ["fit24-offers", "k24-news"]
    only = api("staff").get("/purposes", brand="klinikk24").json()
    assert [p["key"] for p in only["items"]] == ["k24-news"]

    patched = api("marketer").patch(
        f"/purposes/{created['id']}", {"name": "Offers and news", "channels": ["email", "sms"]}
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["name"] == "Offers and news"
    assert patched.json()["channels"] == ["email", "sms"]
    assert patched.json()["notice"]["version"] == 1  # settings never change the notice
    assert api("staff").get("/purposes/987654").status_code == 404
    nul = api("staff").get("/purposes", brand="fit\x0024")
    assert nul.status_code == 422
    assert names_field(nul, "brand")
    assert api("marketer").patch("/purposes/987654", {"name": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("extra", "field", "status"),
    [
        ({"brand": "nope"}, "brand", 404),
        ({"key": "Not A Slug"}, "key", 422),
        ({"channels": []}, "channels", 422),
        ({"channels": ["fax"]}, "channels", 422),
        ({"notice_text": "   "}, "notice_text", 409),  # only white space: the service refuses it
        ({"notice_text": ""}, "notice_text", 422),
        ({"min_notice_version": 2}, "min_notice_version", 422),
        ({"consent_lifetime_days": 0}, "consent_lifetime_days", 422),
        ({"consent_lifetime_days": "30"}, "consent_lifetime_days", 422),
        ({"colour": "red"}, "colour", 422),
    ],
)
def test_a_bad_purpose_is_refused_naming_the_field(api, brand, extra, field, status):
    body = {"brand": "fit24", "key": "p", "name": "P", "channels": ["email"], "notice_text": "t", **extra}
    response = api("marketer").post("/purposes", body)
    assert response.status_code == status, response.content
    assert names_field(response, field), locs(response)
    assert not Purpose.objects.exists()


def test_a_purpose_key_is_unique_per_brand(api, brand):
    new_purpose(api)
    response = api("marketer").post(
        "/purposes",
        {"brand": "fit24", "key": "fit24-offers", "name": "x", "channels": ["sms"], "notice_text": "t"},
    )
    assert response.status_code == 409
    assert names_field(response, "key")
    assert Purpose.objects.count() == 1


def test_a_new_notice_text_is_a_new_version_and_grants_point_at_the_current_one(api, contact, purpose):
    first = grant(api, contact.pk)
    assert first.json()["notice_version"] == 1
    published = api("marketer").post(f"/purposes/{purpose.pk}/notices", {"text": "New notice text."})
    assert published.status_code == 201
    assert published.json()["version"] == 2
    assert published.json()["text"] == "New notice text."
    assert api("staff").get(f"/purposes/{purpose.pk}").json()["notice"]["version"] == 2
    notices = api("staff").get(f"/purposes/{purpose.pk}/notices").json()
    assert [(n["version"], n["text"]) for n in notices] == [
        (1, f"Notice for {NEWSLETTER}"),
        (2, "New notice text."),
    ]
    # Publishing the same text again is not a new version.
    again = api("marketer").post(f"/purposes/{purpose.pk}/notices", {"text": "New notice text."})
    assert again.json()["version"] == 2
    assert PurposeNotice.objects.filter(purpose=purpose).count() == 2

    second = grant(api, contact.pk)
    assert second.json()["notice_version"] == 2
    explicit = grant(api, contact.pk, notice_version=1)
    assert explicit.json()["notice_version"] == 1
    unknown = grant(api, contact.pk, notice_version=3)
    assert unknown.status_code == 409
    assert names_field(unknown, "notice_version")
    assert api("marketer").post(f"/purposes/{purpose.pk}/notices", {"text": " "}).status_code == 409
    assert api("marketer").post(f"/purposes/{purpose.pk}/notices", {"text": ""}).status_code == 422
    assert api("marketer").post("/purposes/987654/notices", {"text": "x"}).status_code == 404


def test_a_minimum_notice_version_makes_older_consents_stale(api, make_contact, purpose):
    old, fresh = make_contact(), make_contact()
    assert grant(api, old.pk).status_code == 201
    api("marketer").post(f"/purposes/{purpose.pk}/notices", {"text": "v2"})
    assert grant(api, fresh.pk).status_code == 201

    too_high = api("marketer").patch(f"/purposes/{purpose.pk}", {"min_notice_version": 3})
    assert too_high.status_code == 409
    assert names_field(too_high, "min_notice_version")

    raised = api("marketer").patch(f"/purposes/{purpose.pk}", {"min_notice_version": 2})
    assert raised.json()["min_notice_version"] == 2
    assert check(api, old.pk)["reason"] == "stale_notice"
    assert check(api, fresh.pk)["allowed"] is True

    cleared = api("marketer").patch(f"/purposes/{purpose.pk}", {"min_notice_version": None})
    assert cleared.json()["min_notice_version"] is None
    assert check(api, old.pk)["allowed"] is True


# --- consents -------------------------------------------------------------------------------


def test_a_grant_from_a_web_form_waits_for_confirmation(api, contact, purpose):
    response = grant(
        api,
        contact.pk,
        source="web_form",
        evidence={"ip": "203.0.113.9", "user_agent": "Firefox", "proof_sha256": "a" * 64},
    )
    assert response.status_code == 201, response.content
    pending = response.json()
    assert (pending["action"], pending["pending_confirmation"]) == ("grant", True)
    assert pending["recorded_by"] == "api-key:test-staff"
    assert pending["evidence_hash"]
    assert ConsentEvidence.objects.get(event_id=pending["id"]).ip == "203.0.113.9"
    assert check(api, contact.pk) == {
        "allowed": False,
        "reason": "awaiting_confirmation",
        "event_id": pending["id"],
    }

    confirmed = api("staff").post(
        "/consents", {"action": "confirm", "confirms_event_id": pending["id"], "source": "web_form"}
    )
    assert confirmed.status_code == 201, confirmed.content
    assert confirmed.json()["action"] == "confirm"
    assert confirmed.json()["confirms_event_id"] == pending["id"]
    assert check(api, contact.pk) == {
        "allowed": True,
        "reason": "consent",
        "event_id": confirmed.json()["id"],
    }

    twice = api("staff").post("/consents", {"action": "confirm", "confirms_event_id": pending["id"]})
    assert twice.status_code == 409


def test_confirm_needs_a_pending_grant(api, contact, purpose):
    direct = grant(api, contact.pk, source="front_desk").json()
    assert direct["pending_confirmation"] is False
    assert check(api, contact.pk)["allowed"] is True
    assert (
        api("staff").post("/consents", {"action": "confirm", "confirms_event_id": direct["id"]}).status_code
        == 409
    )
    missing = api("staff").post("/consents", {"action": "confirm"})
    assert missing.status_code == 422
    assert names_field(missing, "confirms_event_id")
    unknown = api("staff").post("/consents", {"action": "confirm", "confirms_event_id": 987654})
    assert unknown.status_code == 404
    assert names_field(unknown, "confirms_event_id")


def test_a_withdrawal_for_one_purpose_and_for_everything(api, contact, purpose):
    grant(api, contact.pk)
    grant(api, contact.pk, channel="sms")
    one = api("staff").post(
        "/consents",
        {"action": "withdraw", "contact_id": contact.pk, "channel": "email", "purpose": NEWSLETTER},
    )
    assert one.status_code == 201
    assert check(api, contact.pk) == {"allowed": False, "reason": "withdrawn", "event_id": one.json()["id"]}
    assert check(api, contact.pk, channel="sms")["allowed"] is True
    assert not Suppression.objects.exists()

    everything = api("staff").post(
        "/consents", {"action": "withdraw", "contact_id": contact.pk, "source": "unsubscribe_link"}
    )
    assert everything.status_code == 201
    assert check(api, contact.pk, channel="sms")["reason"] == "suppressed:withdrawn"
    assert set(Suppression.objects.values_list("channel", "reason")) == {
        ("email", "withdrawn"),
        ("sms", "withdrawn"),
    }


def test_a_guardian_grants_for_a_minor(api, make_contact, purpose):
    parent = make_contact()
    child = make_contact(birth_date=__import__("datetime").date(2016, 1, 1), guardian_id=parent.pk)
    by_self = grant(api, child.pk)
    assert by_self.status_code == 409
    assert names_field(by_self, "actor")
    ok = grant(api, child.pk, actor="guardian", actor_contact_id=parent.pk)
    assert ok.status_code == 201, ok.content
    assert ok.json()["actor_contact_id"] == parent.pk
    assert check(api, child.pk)["allowed"] is True


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"purpose": "no-such-purpose"}, "purpose", "unknown"),
        ({"purpose": None}, "purpose", "invalid"),
        ({"channel": "sms", "purpose": "email-only"}, "channel", "refused"),
        ({"channel": None}, "channel", "invalid"),
        ({"channel": "fax"}, "channel", "invalid"),
        ({"contact_id": 987654}, "contact_id", "unknown"),
        ({"contact_id": None}, "contact_id", "invalid"),
        ({"contact_id": "1"}, "contact_id", "invalid"),  # a string is not a number
        ({"actor": "guardian"}, "actor_contact_id", "refused"),
        ({"actor": "guardian", "actor_contact_id": "STRANGER"}, "actor_contact_id", "refused"),
        ({"actor": "guardian", "actor_contact_id": 987654}, "actor_contact_id", "unknown"),
        ({"actor_contact_id": "STRANGER"}, "actor_contact_id", "refused"),
        ({"basis": "soft_opt_in"}, "basis", "refused"),
        ({"basis": "contract"}, "basis", "refused"),
        ({"source": "carrier_pigeon"}, "source", "invalid"),
        ({"opt_out_offered": "yes"}, "opt_out_offered", "invalid"),
        ({"confirms_event_id": 1}, "confirms_event_id", "invalid"),  # not a field of a grant
        ({"occurred_at": "2026-01-01T10:00:00"}, "occurred_at", "invalid"),
        ({"occurred_at": 1767261600}, "occurred_at", "invalid"),
        ({"occurred_at": "2999-01-01T10:00:00+00:00"}, "occurred_at", "refused"),
        ({"occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at", "invalid"),
        ({"evidence": {"ip": "999.1.1.1"}}, "evidence.ip", "invalid"),
        ({"evidence": [None, None]}, "evidence", "invalid"),
        ({"evidence": {"proof_sha256": "not-a-hash"}}, "evidence.proof_sha256", "invalid"),
        ({"evidence": {"user_agent": "a\x00b"}}, "evidence.user_agent", "invalid"),
    ],
)
def test_a_bad_consent_is_refused_naming_the_field_and_nothing_is_written(
    api, make_contact, make_purpose, purpose, body, field, kind
):
    make_purpose(key="email-only", channels=("email",))
    parent, stranger = make_contact(), make_contact()
    contact = make_contact(guardian_id=parent.pk)
    body = {
        key: (stranger.pk if value == "STRANGER" else value)
        for key, value in {
            "action": "grant",
            "contact_id": contact.pk,
            "channel": "email",
            "purpose": NEWSLETTER,
            **body,
        }.items()
    }
    before = ConsentEvent.objects.count()
    response = api("staff").post("/consents", body)
    assert response.status_code == STATUS[kind], response.content
    assert response.json()["field"] == field, response.content
    assert ConsentEvent.objects.count() == before
    assert not ConsentEvidence.objects.exists()


def test_a_purpose_of_another_brand_is_unknown_to_the_contact(api, contact, make_purpose, other_brand):
    make_purpose(key="k24-news", brand=other_brand)
    response = grant(api, contact.pk, purpose="k24-news")
    assert response.status_code == 404
    assert names_field(response, "purpose")
    assert not ConsentEvent.objects.exists()


def test_a_grant_needs_an_address_on_the_channel(api, make_contact, purpose):
    no_mobile = make_contact(mobile=None)
    response = grant(api, no_mobile.pk, channel="sms")
    assert response.status_code == 409
    assert names_field(response, "channel")
    assert not ConsentEvent.objects.exists()


# --- objections and state -------------------------------------------------------------------


def test_an_objection_stops_every_channel_and_purpose(api, contact, purpose, make_purpose):
    make_purpose(key="fit24-offers", channels=("sms",))
    grant(api, contact.pk)
    response = api("staff").post("/objections", {"contact_id": contact.pk, "source": "front_desk"})
    assert response.status_code == 201, response.content
    assert response.json()["action"] == "object"
    assert check(api, contact.pk)["reason"] == "suppressed:objection"
    assert check(api, contact.pk, channel="sms", purpose="fit24-offers")["reason"] == "suppressed:objection"
    assert set(Suppression.objects.values_list("channel", "reason")) == {("all", "objection")}
    unknown = api("staff").post("/objections", {"contact_id": 987654})
    assert unknown.status_code == 404
    assert names_field(unknown, "contact_id")


def test_contact_consents_show_the_current_state_and_the_history(api, contact, purpose, make_purpose):
    make_purpose(key="fit24-offers", channels=("sms",))
    granted = grant(api, contact.pk).json()
    pending = grant(api, contact.pk, channel="sms", purpose="fit24-offers", source="web_form").json()
    response = api("dpo").get(f"/contacts/{contact.pk}/consents")
    assert response.status_code == 200
    body = response.json()
    assert body["contact_id"] == contact.pk
    assert body["current"] == [
        {
            "purpose": "fit24-newsletter",
            "channel": "email",
            "allowed": True,
            "reason": "consent",
            "event_id": granted["id"],
        },
        {
            "purpose": "fit24-newsletter",
            "channel": "sms",
            "allowed": False,
            "reason": "no_consent",
            "event_id": None,
        },
        {
            "purpose": "fit24-offers",
            "channel": "sms",
            "allowed": False,
            "reason": "awaiting_confirmation",
            "event_id": pending["id"],
        },
    ]
    assert [e["id"] for e in body["history"]] == [granted["id"], pending["id"]]
    assert body["history"][0]["purpose"] == NEWSLETTER
    assert api("dpo").get("/contacts/987654/consents").status_code == 404


def test_check_names_an_unknown_contact_or_purpose(api, contact, purpose):
    unknown_contact = api("marketer").get("/check", contact_id=987654, channel="email", purpose=NEWSLETTER)
    assert unknown_contact.status_code == 404
    assert unknown_contact.json()["field"] == "contact_id"
    unknown_purpose = api("marketer").get("/check", contact_id=contact.pk, channel="email", purpose="nope")
    assert unknown_purpose.status_code == 404
    assert unknown_purpose.json()["field"] == "purpose"
    bad_channel = api("marketer").get("/check", contact_id=contact.pk, channel="fax", purpose=NEWSLETTER)
    assert bad_channel.status_code == 422
    assert check(api, contact.pk) == {"allowed": False, "reason": "no_consent", "event_id": None}


# --- suppressions ---------------------------------------------------------------------------


def suppress(api: Any, address: str, channel: str, reason: str, role: str = "staff") -> Any:
    return api(role).post("/suppressions", {"address": address, "channel": channel, "reason": reason})


def test_add_and_list_suppressions_filtered_by_raw_address(api, brand):
    phone = suppress(api, "+4741234567", "sms", "sms_stop")
    assert phone.status_code == 201, phone.content
    mail = suppress(api, "Bounce@Example.NO", "email", "hard_bounce")
    assert mail.status_code == 201
    again = suppress(api, "bounce@example.no", "email", "hard_bounce")
    assert again.status_code == 200
    assert again.json()["id"] == mail.json()["id"]
    assert Suppression.objects.count() == 2
    assert ConsentEvent.objects.filter(action="suppress").count() == 3  # every request is on record

    def ids(**params: Any) -> list[int]:
        response = api("marketer").get("/suppressions", **params)
        assert response.status_code == 200, response.content
        return [s["id"] for s in response.json()["items"]]

    assert set(ids()) == {phone.json()["id"], mail.json()["id"]}
    assert ids(address="412 34 567") == [phone.json()["id"]]
    assert ids(address="0047 412 34 567") == [phone.json()["id"]]
    assert ids(address="BOUNCE@example.no") == [mail.json()["id"]]
    assert ids(address="someone.else@example.no") == []
    assert ids(reason="sms_stop") == [phone.json()["id"]]
    assert set(ids(active="true")) == {phone.json()["id"], mail.json()["id"]}
    assert ids(active="false") == []
    assert api("marketer").get("/suppressions", active="yes").status_code == 422
    # A number nobody can have (a landline for SMS) is suppressed for nobody.
    assert ids(address="22 22 22 22") == []
    assert api("marketer").get("/suppressions", address="not an address").status_code == 422


def test_a_bad_suppression_is_refused_naming_the_field(api, brand):
    for body, field, status in [
        ({"address": "not-an-email", "channel": "email", "reason": "hard_bounce"}, "address", 422),
        ({"address": "41234567", "channel": "email", "reason": "hard_bounce"}, "address", 409),
        ({"address": "a@example.no", "channel": "fax", "reason": "hard_bounce"}, "channel", 422),
        ({"address": "a@example.no", "channel": "email", "reason": "erased"}, "reason", 422),
        (
            {"address": "a@example.no", "channel": "email", "reason": "hard_bounce", "brand": "nope"},
            "brand",
            404,
        ),
        (
            {
                "address": "a@example.no",
                "channel": "email",
                "reason": "hard_bounce",
                "occurred_at": "0001-01-01T00:30:00+01:00",
            },
            "occurred_at",
            422,
        ),
    ]:
        response = api("staff").post("/suppressions", body)
        assert response.status_code == status, (body, response.content)
        assert names_field(response, field), locs(response)
    assert not Suppression.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_staff_lift_a_bounce_but_never_a_withdrawal(api, brand):
    bounce = suppress(api, "bounce@example.no", "email", "hard_bounce").json()
    lifted = api("staff").post(f"/suppressions/{bounce['id']}/lift", {})
    assert lifted.status_code == 200, lifted.content
    assert lifted.json()["lifted_at"] is not None
    assert lifted.json()["lifted_by_event_id"] is not None
    assert ConsentEvent.objects.filter(action="lift_suppression").count() == 1
    assert api("staff").post(f"/suppressions/{bounce['id']}/lift", {}).status_code == 409

    withdrawn = suppress(api, "gone@example.no", "email", "withdrawn").json()
    refused = api("dpo").post(f"/suppressions/{withdrawn['id']}/lift", {})
    assert refused.status_code == 403
    assert "double opt-in" in refused.json()["detail"]
    assert Suppression.objects.get(pk=withdrawn["id"]).lifted_at is None
    assert api("staff").post("/suppressions/987654/lift", {}).status_code == 404


# --- the ledger -----------------------------------------------------------------------------


def test_the_dpo_verifies_the_ledger_and_a_marketer_may_not(api, contact, purpose):
    grant(api, contact.pk, evidence={"ip": "::ffff:192.0.2.1", "user_agent": "Safari"})
    grant(api, contact.pk, channel="sms", evidence={"ip": "2001:db8::1"})
    api("staff").post("/objections", {"contact_id": contact.pk})
    response = api("dpo").get("/ledger/verify")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "events_checked": 3,
        "chains": 1,
        "first_broken": None,
        "evidence_mismatches": [],
        "checkpoint_problem": None,
    }
    forbidden = api("marketer").get("/ledger/verify")
    assert forbidden.status_code == 403
    assert "dpo" in forbidden.json()["detail"]
    assert api("staff").get("/ledger/verify").status_code == 403
    assert api("system").get("/ledger/verify").status_code == 200


@pytest.mark.parametrize("action", ["grant", "withdraw", "objection"])
def test_a_recorded_event_is_answered_as_stored_without_reading_it_back(api, contact, purpose, action):
    """The answer is the service's own event (brand, purpose, notice at hand), not a second read
    of the ledger, and says what the ledger holds: the instants in UTC whatever offset the
    request gave."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    given = "2026-11-02T10:15:30.123456+01:00"
    body: dict[str, Any] = {"contact_id": contact.pk, "occurred_at": given}
    if action == "objection":
        path, role = "/objections", "staff"
        body.update(source="rights_request", actor="self")
    else:
        path, role = "/consents", "staff"
        body.update(action=action, channel="email", purpose=NEWSLETTER)
        if action == "grant":
            body.update(basis="consent", source="front_desk")
        else:
            body.update(source="unsubscribe_link", actor="self")
    with CaptureQueriesContext(connection) as queries:
        response = api(role).post(path, body)
    assert response.status_code == 201, response.content
    answered = response.json()
    stored = ConsentEvent.objects.select_related("brand", "purpose", "notice").get(pk=answered["id"])
    reads_back = [q["sql"] for q in queries if 'FROM "suppression_consentevent"' in q["sql"] and "JOIN" in q["sql"]]
    assert reads_back == []
    assert stored.brand is not None
    assert answered["brand"] == stored.brand.key == "fit24"
    assert answered["purpose"] == (stored.purpose.key if stored.purpose else None)
    assert answered["notice_version"] == (stored.notice.version if stored.notice else None)
    assert (answered["chain"], answered["seq"], answered["hash"], answered["prev_hash"]) == (
        stored.chain,
        stored.seq,
        stored.hash,
        stored.prev_hash,
    )
    assert answered["occurred_at"] == "2026-11-02T09:15:30.123Z"  # the API writes milliseconds
    recorded = dt.datetime.fromisoformat(answered["recorded_at"].replace("Z", "+00:00"))
    assert answered["recorded_at"].endswith("Z")
    assert recorded == stored.recorded_at.replace(microsecond=stored.recorded_at.microsecond // 1000 * 1000)
