"""The data-protection rights over the API: export, communication log, erasure, restriction and
rectification; dpo keys only, every call in the rights audit log."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import ProgrammingError, transaction
from django.utils import timezone

from comms.campaigns import sending, services
from comms.campaigns.models import CallbackReceipt, Campaign, Delivery, Reply
from comms.contacts.models import Contact, Visit
from comms.rights.models import AuditEntry
from comms.suppression import selectors
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent, ConsentEvidence, Purpose, Suppression
from comms.suppression.services import Evidence, Principal
from tests.campaigns.campaign_helpers import make_campaign
from tests.db_owner import as_owner

STAFF = Principal(actor="staff", recorded_by="test")
PERSON = Principal(actor="self", recorded_by="test")
FORM = Evidence(ip="192.0.2.44", user_agent="Mozilla/5.0 (sign-up form)")
RIGHTS = [
    ("get", "/contacts/{id}/export"),
    ("get", "/contacts/{id}/log"),
    ("post", "/contacts/{id}/erase"),
    ("post", "/contacts/{id}/restrict"),
    ("post", "/contacts/{id}/restrict/lift"),
]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def call(api: Any, role: str | None, method: str, path: str, contact_id: int) -> Any:
    client = api(role)
    url = path.format(id=contact_id)
    return client.get(url) if method == "get" else client.post(url)


def grant(contact: Contact, purpose: Purpose, channel: str = "sms", **extra: Any) -> ConsentEvent:
    return ledger.consent_grant(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis="consent",
        source=extra.pop("source", "front_desk"),
        principal=extra.pop("principal", STAFF),
        **extra,
    )


def send_now(campaign: Campaign) -> None:
    """Start a campaign and decide every delivery through the send path, in this transaction."""
    services.campaign_send_now(campaign=campaign)
    services.campaign_start(campaign_id=campaign.pk)
    sending.deliveries_send(
        delivery_ids=list(Delivery.objects.filter(campaign=campaign).values_list("id", flat=True))
    )


@pytest.fixture
def people(brand, make_contact, purpose, fake_lifevision):
    """A person with a rich history, their ward, and someone else entirely."""
    person = make_contact(first_name="Kari", last_name="Nordmann", tags=["yoga"], home_centre="oslo")
    ward = make_contact(
        first_name="Ola", guardian_id=person.pk, birth_date=dt.date(timezone.localdate().year - 12, 1, 1)
    )
    other = make_contact(first_name="Petronella", email="petronella@example.no", mobile="+4798765432")

    grant(person, purpose, "email", evidence=FORM)
    grant(person, purpose, "sms")
    grant(ward, purpose, "sms", principal=Principal(actor="guardian", guardian=person))
    grant(other, purpose, "sms", evidence=Evidence(ip="198.51.100.7"))
    grant(other, purpose, "email")
    Visit.objects.create(contact=person, kind="check_in", occurred_at=timezone.now() - dt.timedelta(days=3))
    send_now(make_campaign(brand, purpose, text="Hei {first_name}!"))
    ledger.consent_withdraw(contact=person, channel="email", purpose=purpose, source="api", principal=PERSON)
    ledger.consent_withdraw(contact=other, channel="email", purpose=purpose, source="api", principal=PERSON)
    # A bounce recorded against the bare address, before anyone knew whose it was.
    bounce, _ = ledger.suppression_add(
        channel="email",
        address=person.email,
        reason="hard_bounce",
        source="lifevision_webhook",
        principal=STAFF,
    )
    ledger.suppression_add(
        channel="email",
        address=other.email,
        reason="hard_bounce",
        source="lifevision_webhook",
        principal=STAFF,
    )
    send_now(make_campaign(brand, purpose, channel="email", name="Nyhetsbrev"))
    return {"person": person, "ward": ward, "other": other, "bounce": bounce}


# --- who may ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer", "staff", "system"])
def test_rights_endpoints_answer_403_to_every_key_but_a_dpos_and_log_the_attempt(api, contact, role):
    for method, path in RIGHTS:
        response = call(api, role, method, path, contact.pk)
        assert response.status_code == 403, (path, response.content)
        assert response.json()["detail"] == "this needs one of the roles: dpo"

    contact.refresh_from_db()
    assert contact.erased_at is None
    assert not ConsentEvent.objects.filter(action__in=["erase", "restrict"]).exists()
    refused = AuditEntry.objects.filter(contact_id=contact.pk, actor=f"api-key:test-{role}")
    assert sorted(refused.values_list("action", flat=True)) == sorted(
        ["export", "log", "erase", "restrict", "lift_restriction"]
    )
    assert all(entry.outcome.startswith("refused 403") for entry in refused)


def test_rights_endpoints_need_a_key(api, contact):
    for method, path in RIGHTS:
        assert call(api, None, method, path, contact.pk).status_code == 401


def test_every_rights_call_is_in_the_audit_log_with_who_what_when_and_whom(api, contact):
    before = timezone.now()
    for method, path in RIGHTS:
        call(api, "dpo", method, path, contact.pk)

    entries = list(AuditEntry.objects.filter(contact_id=contact.pk).order_by("id"))
    assert [(e.actor, e.action) for e in entries] == [
        ("api-key:test-dpo", "export"),
        ("api-key:test-dpo", "log"),
        ("api-key:test-dpo", "erase"),
        ("api-key:test-dpo", "restrict"),  # refused: an erased contact cannot be restricted
        ("api-key:test-dpo", "lift_restriction"),  # refused: not restricted
    ]
    assert [e.outcome.split(":")[0] for e in entries] == ["ok", "ok", "ok", "refused 409", "refused 409"]
    assert all(e.at >= before for e in entries)


def test_the_audit_log_is_append_only(api, contact):
    call(api, "dpo", "get", "/contacts/{id}/export", contact.pk)
    # The service role holds no UPDATE or DELETE on the log at all ...
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        AuditEntry.objects.update(actor="someone else")
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        AuditEntry.objects.all().delete()
    # ... and the triggers refuse even the owner.
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        as_owner("UPDATE rights_auditentry SET actor = 'someone else'")
    with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
        as_owner("DELETE FROM rights_auditentry")
    assert AuditEntry.objects.count() == 1


# --- export -------------------------------------------------------------------------------


def test_an_export_holds_every_ledger_event_and_message_of_the_person_and_no_one_elses(api, people):
    person, ward, other = people["person"], people["ward"], people["other"]

    document = ok(api("dpo").get(f"/contacts/{person.pk}/export"))

    mine = set(ConsentEvent.objects.filter(contact=person).values_list("id", flat=True))
    as_guardian = set(ConsentEvent.objects.filter(actor_contact=person).values_list("id", flat=True))
    assert as_guardian and mine
    exported = {event["id"]: event for event in document["consent_events"]}
    assert set(exported) == mine | as_guardian | {people["bounce"].pk}
    assert {exported[pk]["role"] for pk in as_guardian} == {"guardian"}
    assert exported[people["bounce"].pk]["role"] == "address"
    assert not set(exported) & set(ConsentEvent.objects.filter(contact=other).values_list("id", flat=True))

    email_grant = next(
        e for e in document["consent_events"] if e["action"] == "grant" and e["channel"] == "email"
    )
    assert email_grant["notice"] == {
        "purpose": "fit24-newsletter",
        "version": 1,
        "text": "Notice for fit24-newsletter",
    }
    assert email_grant["evidence"]["ip"] == "192.0.2.44"

    messages = {m["delivery_id"]: m for m in document["messages"]}
    assert set(messages) == set(Delivery.objects.filter(contact=person).values_list("id", flat=True))
    sms, email = document["messages"]
    assert (sms["channel"], sms["status"], sms["reason"], sms["kind"]) == (
        "sms",
        "sent",
        "consent",
        "campaign",
    )
    assert (email["channel"], email["status"], email["reason"]) == (
        "email",
        "denied",
        "suppressed:hard_bounce",
    )
    assert sms["decision_event_id"] in exported

    assert document["contact"]["first_name"] == "Kari"
    assert document["contact"]["tags"] == ["yoga"]
    assert document["guardian"] == {"guardian_id": None, "ward_ids": [ward.pk]}
    assert [v["kind"] for v in document["visits"]] == ["check_in"]
    assert {(s["reason"], s["channel"]) for s in document["suppressions"]} == {("hard_bounce", "email")}
    assert document["suppressions"][0]["address_key"] == address_key("email", person.email)
    lifevision = document["propagation"]["lifevision"]
    assert [m["provider_id"] for m in lifevision["messages"]] == [sms["provider_id"]]
    assert document["propagation"]["mailchimp"]["status"] == "not configured"
    assert document["rights_log"][-1]["action"] == "export"

    text = json.dumps(document)
    for foreign in (other.email, other.mobile, other.first_name, ward.email, ward.mobile):
        assert foreign not in text


def test_the_communication_log_lists_every_message_and_decision(
    api, brand, make_contact, purpose, fake_lifevision
):
    person = make_contact()
    grant(person, purpose, "sms")
    send_now(make_campaign(brand, purpose, name="Sommer"))
    ledger.consent_withdraw(contact=person, channel="sms", purpose=purpose, source="api", principal=PERSON)
    send_now(make_campaign(brand, purpose, name="Høst"))

    log = ok(api("dpo").get(f"/contacts/{person.pk}/log"))

    assert [(m["campaign"], m["status"], m["reason"]) for m in log["messages"]] == [
        ("Sommer", "sent", "consent"),
        ("Høst", "denied", "withdrawn"),
    ]
    assert AuditEntry.objects.filter(contact_id=person.pk, action="log", outcome="ok").count() == 1


def test_an_unknown_contact_is_404_for_every_rights_endpoint(api, db):
    for method, path in RIGHTS:
        response = call(api, "dpo", method, path, 987654)
        assert response.status_code == 404, path
    assert AuditEntry.objects.filter(contact_id=987654, outcome__startswith="refused 404").count() == len(
        RIGHTS
    )


# --- erasure ------------------------------------------------------------------------------


def test_after_erasure_the_personal_data_is_gone_the_chain_verifies_and_a_reimport_is_denied(
    api, brand, make_contact, purpose, trial_purpose, fake_lifevision, django_capture_on_commit_callbacks
):
    guest = make_contact(
        kind="guest", first_name="Kari", last_name="Nordmann", tags=["trial"], home_centre="oslo",
        external_id="lv-1", birth_date=dt.date(1990, 5, 17),
    )  # fmt: skip
    grant(guest, purpose, "sms", evidence=FORM)
    grant(guest, trial_purpose, "sms", evidence=FORM)
    send_now(make_campaign(brand, purpose))
    ok(api("marketer").post("/followup-rules", {
        "brand": "fit24", "name": "Dag 1", "trigger": "trial_visit", "delay_hours": 24, "channel": "sms",
        "purpose": "trial-followup", "text": "Hei {first_name}!",
    }), 201)  # fmt: skip
    ok(api("staff").post(f"/contacts/{guest.pk}/visits", {
        "kind": "trial_session", "occurred_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
    }), 201)  # fmt: skip
    inbound = CallbackReceipt.objects.create(
        provider="lifevision",
        kind="inbound",
        dedupe_key="lv-in-1",
        payload={"provider_id": "lv-in-1", "from": guest.mobile, "to": "FIT24", "text": "Hjelp, Kari her"},
    )
    reply = Reply.objects.create(
        inbound_receipt=inbound, keyword="help", to=guest.mobile, sender="FIT24", text="…"
    )
    email, mobile = guest.email, guest.mobile
    events_before = ConsentEvent.objects.count()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        erased = ok(api("dpo").post(f"/contacts/{guest.pk}/erase"))

    assert erased["suppressed_addresses"] == 2
    assert {p["provider"]: p["status"] for p in erased["propagation"]} == {
        "lifevision": "nothing_to_do",
        "mailchimp": "not_configured",
    }
    assert len(callbacks) >= 1  # the providers are told after commit
    guest.refresh_from_db()
    assert guest.erased_at is not None
    assert (guest.first_name, guest.last_name, guest.email, guest.mobile) == ("", "", None, None)
    assert (guest.birth_date, guest.external_id, guest.home_centre_id, guest.guardian_id) == (
        None,
        None,
        None,
        None,
    )
    assert not guest.tags.exists() and not Visit.objects.filter(contact=guest).exists()
    assert not ConsentEvidence.objects.filter(event__contact=guest, ip__isnull=False).exists()
    assert not ConsentEvidence.objects.filter(event__contact=guest).exclude(user_agent="").exists()
    followup = Delivery.objects.get(contact=guest, followup__isnull=False)
    assert (followup.status, followup.reason) == ("cancelled", "erased")
    reply.refresh_from_db()
    inbound.refresh_from_db()
    assert (reply.to, reply.text) == ("", "")
    assert inbound.payload == {"provider_id": "lv-in-1", "to": "FIT24", "redacted": "erased"}
    assert ConsentEvent.objects.count() == events_before + 1
    assert selectors.ledger_verify().ok
    assert set(Suppression.objects.filter(reason="erased").values_list("address_key", flat=True)) == {
        address_key("email", email),
        address_key("sms", mobile),
    }
    assert AuditEntry.objects.filter(contact_id=guest.pk, action="erase", outcome="ok").count() == 1

    # The member system sends the same person again: a new contact, and even a new consent.
    ok(api("staff").post("/contacts/import", {"contacts": [
        {"brand": "fit24", "kind": "guest", "external_id": "lv-2", "email": email, "mobile": mobile},
    ]}))  # fmt: skip
    again = Contact.objects.get(external_id="lv-2")
    grant(again, purpose, "sms")
    grant(again, purpose, "email")
    for channel in ("sms", "email"):
        decision = ok(
            api("staff").get(f"/check?contact_id={again.pk}&channel={channel}&purpose={purpose.key}")
        )
        assert (decision["allowed"], decision["reason"]) == (False, "suppressed:erased")
    campaign = make_campaign(brand, purpose, name="Etter sletting")
    send_now(campaign)
    delivery = Delivery.objects.get(campaign=campaign, contact=again)
    assert (delivery.status, delivery.reason) == ("denied", "suppressed:erased")
    assert not [m for m in fake_lifevision.messages if f"campaign:{campaign.pk}" in m.get("tags", [])]


def test_erasing_twice_is_409_and_changes_nothing(api, contact):
    ok(api("dpo").post(f"/contacts/{contact.pk}/erase"))
    state = (ConsentEvent.objects.count(), Suppression.objects.count())

    response = api("dpo").post(f"/contacts/{contact.pk}/erase")

    assert response.status_code == 409
    assert "already erased" in response.json()["detail"]
    assert (ConsentEvent.objects.count(), Suppression.objects.count()) == state
    assert AuditEntry.objects.filter(contact_id=contact.pk, action="erase").count() == 2


def test_an_erased_contact_can_still_be_exported_and_shows_what_remains(api, contact, purpose):
    grant(contact, purpose, "sms", evidence=FORM)
    ok(api("dpo").post(f"/contacts/{contact.pk}/erase"))

    document = ok(api("dpo").get(f"/contacts/{contact.pk}/export"))

    assert document["contact"]["erased_at"] is not None
    assert (
        document["contact"]["email"],
        document["contact"]["mobile"],
        document["contact"]["first_name"],
    ) == (
        None,
        None,
        "",
    )
    assert [e["action"] for e in document["consent_events"]] == ["grant", "erase"]
    assert document["consent_events"][0]["evidence"]["ip"] is None
    assert {s["reason"] for s in document["suppressions"]} == {"erased"}
    assert [entry["action"] for entry in document["rights_log"]] == ["erase", "export"]


def test_the_erasure_propagation_actor_records_each_provider(
    api, contact, broker, django_capture_on_commit_callbacks
):
    from comms.rights.tasks import propagate_erasure

    with django_capture_on_commit_callbacks(execute=True):
        ok(api("dpo").post(f"/contacts/{contact.pk}/erase"))
    assert broker.queues["default"].qsize() == 1

    propagate_erasure.fn(contact.pk)
    propagate_erasure.fn(contact.pk)  # idempotent

    entries = AuditEntry.objects.filter(contact_id=contact.pk, action="erase_propagation")
    assert entries.count() == 2
    assert [entry.detail for entry in entries] == [
        {"lifevision": "nothing_to_do", "mailchimp": "not_configured"}
    ] * 2


# --- restriction --------------------------------------------------------------------------


def test_restriction_stops_every_message_until_lifted(api, contact, purpose):
    grant(contact, purpose, "sms")

    restricted = ok(api("dpo").post(f"/contacts/{contact.pk}/restrict"), 201)
    check = f"/check?contact_id={contact.pk}&channel=sms&purpose={purpose.key}"
    assert ok(api("staff").get(check))["reason"] == "restricted"
    assert api("dpo").post(f"/contacts/{contact.pk}/restrict").status_code == 409
    lifted = ok(api("dpo").post(f"/contacts/{contact.pk}/restrict/lift"))
    assert api("dpo").post(f"/contacts/{contact.pk}/restrict/lift").status_code == 409

    assert ok(api("staff").get(check))["allowed"] is True
    events = ConsentEvent.objects.filter(
        contact=contact, action__in=["restrict", "lift_restriction"]
    ).order_by("seq")
    assert [(e.pk, e.action, e.source) for e in events] == [
        (restricted["event_id"], "restrict", "rights_request"),
        (lifted["event_id"], "lift_restriction", "rights_request"),
    ]
    assert {e.recorded_by for e in events} == {"api-key:test-dpo"}


def test_restricting_an_unknown_contact_is_404_and_writes_nothing(api, db):
    before = ConsentEvent.objects.count()
    response = api("dpo").post("/contacts/987654/restrict")
    assert response.status_code == 404
    assert response.json() == {"detail": "contact 987654 not found", "field": None}
    assert ConsentEvent.objects.count() == before


# --- rectification ------------------------------------------------------------------------


def test_a_rectification_is_recorded_in_the_ledger_and_the_audit_log_without_values(api, contact):
    ok(api("staff").patch(f"/contacts/{contact.pk}", {"first_name": "Rettet", "mobile": "+4791234567"}))

    events = list(ConsentEvent.objects.filter(contact=contact, action="rectify").order_by("seq"))
    assert [(e.reason, e.channel) for e in events] == [("first_name", ""), ("mobile", "sms")]
    assert events[1].address_key == address_key("sms", "+4791234567")
    assert events[0].address_key == ""
    assert {e.recorded_by for e in events} == {"api-key:test-staff"}
    assert not any("Rettet" in str(getattr(e, f.attname)) for e in events for f in e._meta.fields)
    entry = AuditEntry.objects.get(contact_id=contact.pk, action="rectify")
    assert (entry.actor, entry.detail) == ("api-key:test-staff", {"fields": ["first_name", "mobile"]})
    assert selectors.ledger_verify().ok

    # Not personal data: an ordinary update, not a rectification.
    ok(api("staff").patch(f"/contacts/{contact.pk}", {"tags": ["gold"], "kind": "guest"}))
    ok(api("staff").patch(f"/contacts/{contact.pk}", {"first_name": "Rettet"}))  # no change
    assert ConsentEvent.objects.filter(contact=contact, action="rectify").count() == 2
    assert AuditEntry.objects.filter(contact_id=contact.pk, action="rectify").count() == 1


def test_a_rectification_of_an_erased_contact_is_409(api, contact):
    ok(api("dpo").post(f"/contacts/{contact.pk}/erase"))
    response = api("staff").patch(f"/contacts/{contact.pk}", {"first_name": "Igjen"})
    assert response.status_code == 409
    assert not ConsentEvent.objects.filter(contact=contact, action="rectify").exists()
