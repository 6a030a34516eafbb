"""Follow-ups of trial guests and members, end to end: a visit by API plans the brand's rules,
the scheduler's ticks hand the due ones to the fake LifeVision through the one send path, and
whatever stops a follow-up is recorded on its delivery."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from comms.campaigns.followups import services as followups
from comms.campaigns.models import Campaign, CampaignStatus, Delivery, FollowUp, FollowUpRule
from comms.contacts.models import Contact
from comms.errors import InvalidInput
from comms.suppression import services as ledger
from comms.suppression.services import Principal
from tests.followups.conftest import as_json

pytestmark = pytest.mark.django_db(transaction=True)

STAFF = Principal(actor="staff", recorded_by="test")
PERSON = Principal(actor="self", recorded_by="test")
DAY_ONE = "Hei {first_name}! Takk for besøket i går. Bli medlem i dag og få 50%."
DAY_THREE = "Hei {first_name}! Fortsatt 50% på medlemskap ut uka."


def _rule(api: Any, **fields: Any) -> Any:
    body = {
        "brand": "fit24",
        "name": "Trial day 1",
        "trigger": "trial_visit",
        "delay_hours": 24,
        "channel": "sms",
        "purpose": "trial-followup",
        "text": DAY_ONE,
        **fields,
    }
    return as_json(api("marketer").post("/followup-rules", body))


def _standard_rules(api: Any) -> dict[str, dict[str, Any]]:
    """An SMS the day after a trial visit, another three days after, and an email too."""
    return {
        "sms1": _rule(api),
        "sms3": _rule(api, name="Trial day 3", delay_hours=72, text=DAY_THREE),
        "email": _rule(
            api, name="Trial email", delay_hours=48, channel="email", subject="Velkommen", text="Hei!"
        ),
    }


def _guest(make_contact: Any, purpose: Any, *, sms_consent: bool = True, **fields: Any) -> Contact:
    guest: Contact = make_contact(kind="guest", first_name="Kari", **fields)
    if sms_consent:
        ledger.consent_grant(
            contact=guest,
            channel="sms",
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=STAFF,
        )
    return guest


def _visit(api: Any, contact: Contact, when: dt.datetime, kind: str = "trial_session", **extra: Any) -> Any:
    return as_json(
        api("staff").post(
            f"/contacts/{contact.pk}/visits", {"kind": kind, "occurred_at": when.isoformat(), **extra}
        )
    )


def _followups(api: Any, contact: Contact) -> dict[str, dict[str, Any]]:
    rows = as_json(api("staff").get(f"/contacts/{contact.pk}/followups"))
    return {row["rule"]: row for row in rows}


def test_a_trial_guest_with_sms_consent_gets_exactly_the_planned_followups(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, tick
):
    _standard_rules(api)
    guest = _guest(make_contact, trial_purpose)
    bystander = make_contact(kind="guest")  # no visit: nothing planned
    visited = (timezone.now() - dt.timedelta(hours=26)).replace(microsecond=0)

    _visit(api, guest, visited)

    planned = _followups(api, guest)
    assert set(planned) == {"Trial day 1", "Trial day 3", "Trial email"}
    assert all(
        row["planned"] and (row["status"], row["reason"]) == ("deferred", "planned")
        for row in planned.values()
    )
    assert dt.datetime.fromisoformat(planned["Trial day 1"]["due_at"]) == visited + dt.timedelta(hours=24)
    assert dt.datetime.fromisoformat(planned["Trial day 3"]["window_ends_at"]) == visited + dt.timedelta(
        days=30
    )

    tick()  # day 1 is due; the email (48 h) and day 3 (72 h) are not
    assert len(fake_lifevision.messages) == 1
    assert fake_lifevision.messages[0]["to"] == guest.mobile
    assert fake_lifevision.messages[0]["text"].startswith("Hei Kari! Takk for besøket i går.")
    assert "STOPP" in fake_lifevision.messages[0]["text"] or "Avmeld" in fake_lifevision.messages[0]["text"]

    clock.advance(days=1)
    tick()  # the email is due: the guest gave no email consent, and soft opt-in never fits a guest
    clock.advance(days=1)
    tick()  # day 3
    tick()  # and nothing more, however often the scheduler runs
    clock.advance(days=40)
    tick()

    assert [m["text"].split("\n")[0] for m in fake_lifevision.messages] == [
        "Hei Kari! Takk for besøket i går. Bli medlem i dag og få 50%.",
        "Hei Kari! Fortsatt 50% på medlemskap ut uka.",
    ]
    assert {m["to"] for m in fake_lifevision.messages} == {guest.mobile}
    seen = _followups(api, guest)
    assert (seen["Trial day 1"]["status"], seen["Trial day 1"]["reason"]) == ("sent", "consent")
    assert (seen["Trial day 3"]["status"], seen["Trial day 3"]["reason"]) == ("sent", "consent")
    assert (seen["Trial email"]["status"], seen["Trial email"]["reason"]) == ("denied", "no_consent")
    assert not any(row["planned"] for row in seen.values())
    assert not Delivery.objects.filter(contact=bystander).exists()
    # The rules' campaigns stay open for the next guest; a campaign never finishes under a rule.
    assert set(Campaign.objects.values_list("status", flat=True)) == {CampaignStatus.SENDING}


def test_a_guest_who_converts_gets_nothing_more_and_the_reason_is_stored(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, tick
):
    _standard_rules(api)
    guest = _guest(make_contact, trial_purpose)
    _visit(api, guest, timezone.now() - dt.timedelta(hours=25))
    tick()
    assert len(fake_lifevision.messages) == 1  # day 1 went out before the guest joined

    as_json(api("staff").patch(f"/contacts/{guest.pk}", {"kind": "member"}))
    tick()  # the follow-ups tick records the stop at once, before anything is due

    seen = _followups(api, guest)
    assert (seen["Trial day 1"]["status"], seen["Trial day 1"]["reason"]) == ("sent", "consent")
    assert (seen["Trial day 3"]["status"], seen["Trial day 3"]["reason"]) == ("denied", "converted")
    assert (seen["Trial email"]["status"], seen["Trial email"]["reason"]) == ("denied", "converted")
    clock.advance(days=5)
    tick()
    assert len(fake_lifevision.messages) == 1


def test_the_send_path_itself_stops_a_converted_guest_at_hand_off(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, run_actors
):
    from comms.campaigns import tasks

    _rule(api)
    guest = _guest(make_contact, trial_purpose)
    _visit(api, guest, timezone.now() - dt.timedelta(hours=1))
    Contact.objects.filter(pk=guest.pk).update(kind="member")  # e.g. the member system's import
    clock.advance(days=1)

    tasks.campaigns_tick.send()  # no follow-ups tick ran: the hand-off applies the rule itself
    run_actors()

    assert fake_lifevision.messages == []
    delivery = Delivery.objects.get(contact=guest)
    assert (delivery.status, delivery.reason) == ("denied", "converted")
    assert delivery.decided_at is not None


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("withdraw", "withdrawn"),
        ("sms_stop", "suppressed:sms_stop"),
        ("objection", "suppressed:objection"),
    ],
)
def test_a_guest_who_withdraws_or_objects_gets_nothing_more_and_the_reason_is_stored(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, tick, stop, reason
):
    _rule(api)
    _rule(api, name="Trial day 3", delay_hours=72, text=DAY_THREE)
    guest = _guest(make_contact, trial_purpose)
    _visit(api, guest, timezone.now() - dt.timedelta(hours=25))
    tick()
    assert len(fake_lifevision.messages) == 1

    if stop == "withdraw":
        ledger.consent_withdraw(
            contact=guest, channel="sms", purpose=trial_purpose, source="api", principal=PERSON
        )
    elif stop == "sms_stop":
        ledger.consent_withdraw(
            contact=guest,
            channel="sms",
            purpose=None,
            source="sms_keyword",
            principal=PERSON,
            suppression_reason="sms_stop",
        )
    else:
        ledger.objection_record(contact=guest, source="api", principal=PERSON)
    clock.advance(days=3)
    tick()

    assert len(fake_lifevision.messages) == 1
    seen = _followups(api, guest)
    assert (seen["Trial day 3"]["status"], seen["Trial day 3"]["reason"]) == ("denied", reason)


def test_a_followup_whose_window_ends_goes_nowhere_and_says_why(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, run_actors, settings
):
    from comms.campaigns import tasks

    rule = _rule(api, delay_hours=24)
    guest = _guest(make_contact, trial_purpose)
    _visit(api, guest, timezone.now() - dt.timedelta(hours=1))
    # The rule is paused before its follow-up is due and resumed after the window closed.
    as_json(api("marketer").patch(f"/followup-rules/{rule['id']}", {"active": False}))
    clock.advance(days=settings.FOLLOWUP_WINDOW_DAYS + 1)
    tasks.campaigns_tick.send()
    run_actors()
    assert fake_lifevision.messages == []
    as_json(api("marketer").patch(f"/followup-rules/{rule['id']}", {"active": True}))
    run_actors()  # resuming enqueues what is due: the hand-off finds the window closed

    assert fake_lifevision.messages == []
    delivery = Delivery.objects.get(contact=guest)
    assert (delivery.status, delivery.reason) == ("denied", "outside_window")


def test_the_followups_tick_records_a_closed_window_before_anything_is_sent(
    api, brand, make_contact, trial_purpose, clock
):
    _rule(api, delay_hours=24)
    guest = _guest(make_contact, trial_purpose)
    _visit(api, guest, timezone.now() - dt.timedelta(hours=1))
    Delivery.objects.filter(contact=guest).update(deferred_until=timezone.now() + dt.timedelta(days=90))
    clock.advance(days=31)

    assert followups.followups_stop_due() == 1

    delivery = Delivery.objects.get(contact=guest)
    assert (delivery.status, delivery.reason) == ("denied", "outside_window")


def test_a_visit_recorded_after_its_window_closed_plans_nothing(api, brand, make_contact, trial_purpose):
    _rule(api)
    guest = _guest(make_contact, trial_purpose)

    _visit(api, guest, timezone.now() - dt.timedelta(days=31))

    assert _followups(api, guest) == {}
    assert not Delivery.objects.filter(contact=guest).exists()


def test_a_rule_follows_a_person_up_once_however_many_trial_visits(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, tick
):
    _rule(api)
    guest = _guest(make_contact, trial_purpose)
    first = timezone.now() - dt.timedelta(hours=30)
    _visit(api, guest, first, external_id="v-1")
    _visit(api, guest, first, external_id="v-1")  # the same visit imported again
    _visit(api, guest, first + dt.timedelta(hours=2), external_id="v-2")
    tick()
    clock.advance(days=2)
    tick()

    assert len(fake_lifevision.messages) == 1
    assert FollowUp.objects.filter(contact=guest).count() == 1


def test_only_trial_visits_of_non_members_and_class_bookings_plan_followups(
    api, brand, make_contact, trial_purpose
):
    _rule(api)
    _rule(api, name="After a class", trigger="class_booking", delay_hours=2, text="Hvordan var timen?")
    member = make_contact(kind="member")
    lead = make_contact(kind="lead")
    guest = make_contact(kind="guest")
    now = timezone.now() - dt.timedelta(minutes=5)

    _visit(api, member, now)  # a member's trial session is not a trial guest's
    _visit(api, guest, now, kind="check_in")
    _visit(api, lead, now)
    _visit(api, member, now, kind="class_booking")

    planned = Counter(FollowUp.objects.values_list("contact_id", "rule__trigger"))
    assert planned == Counter({(lead.pk, "trial_visit"): 1, (member.pk, "class_booking"): 1})


def test_a_member_without_a_visit_for_n_days_is_followed_up_once_unless_they_came_back(
    api, brand, make_contact, trial_purpose, fake_lifevision, clock, tick
):
    _rule(api, name="We miss you", trigger="no_visit", inactive_days=60, delay_hours=0, text="Vi savner deg!")
    lapsed = make_contact(kind="member", first_name="Ola")
    back = make_contact(kind="member")
    never = make_contact(kind="member")  # never visited: no lapse to measure
    for member in (lapsed, back, never):
        ledger.consent_grant(
            contact=member,
            channel="sms",
            purpose=trial_purpose,
            basis="consent",
            source="api",
            principal=STAFF,
        )
    long_ago = timezone.now() - dt.timedelta(days=59, hours=23)
    _visit(api, lapsed, long_ago, kind="check_in")
    _visit(api, back, long_ago, kind="check_in")

    tick()
    assert fake_lifevision.messages == []  # not yet 60 days
    clock.advance(hours=2)
    followups.followups_plan_lapsed()
    _visit(api, back, timezone.now() - dt.timedelta(minutes=1), kind="check_in")  # back before the send
    tick()
    clock.advance(days=10)
    tick()

    assert [m["to"] for m in fake_lifevision.messages] == [lapsed.mobile]
    assert (Delivery.objects.get(contact=back).status, Delivery.objects.get(contact=back).reason) == (
        "denied",
        "visited_again",
    )
    assert not Delivery.objects.filter(contact=never).exists()


def test_a_rule_with_an_unknown_trigger_or_bad_timing_is_refused_and_creates_nothing(
    api, brand, trial_purpose
):
    base: dict[str, Any] = {
        "brand": "fit24",
        "name": "R",
        "trigger": "trial_visit",
        "delay_hours": 24,
        "channel": "sms",
        "purpose": "trial-followup",
        "text": "Hei",
    }
    # 422: the document refuses it; 404: an unknown purpose; 409: the campaign rules refuse it.
    cases: list[tuple[dict[str, Any], str, int]] = [
        ({"trigger": "birthday"}, "trigger", 422),
        ({"delay_hours": 24 * 30}, "delay_hours", 422),
        ({"trigger": "no_visit"}, "inactive_days", 422),
        ({"inactive_days": 10}, "inactive_days", 422),
        ({"purpose": "nope"}, "purpose", 404),
        ({"channel": "email"}, "subject", 409),
        ({"text": "Hei {fornavn}"}, "text", 409),
    ]
    for change, field, status in cases:
        response = api("marketer").post("/followup-rules", {**base, **change})
        assert response.status_code == status, (change, response.content)
        assert field in str(response.json()["detail"]) + str(response.json()["field"]), (
            change,
            response.json(),
        )
    assert not FollowUpRule.objects.exists()
    assert not Campaign.objects.exists()
    assert api("staff").post("/followup-rules", base).status_code == 403
    assert api("marketer").patch("/followup-rules/987654", {"name": "x"}).status_code == 404
    assert api("staff").get("/contacts/987654/followups").status_code == 404


def test_a_rules_trigger_and_channel_never_change(api, brand, trial_purpose):
    rule = _rule(api)

    assert api("marketer").patch(f"/followup-rules/{rule['id']}", {"delay_hours": 9999}).status_code == 422
    renamed = as_json(
        api("marketer").patch(f"/followup-rules/{rule['id']}", {"name": "Dag 1", "text": "Hei!"})
    )
    assert (renamed["name"], renamed["text"], renamed["trigger"], renamed["channel"]) == (
        "Dag 1",
        "Hei!",
        "trial_visit",
        "sms",
    )
    with pytest.raises(InvalidInput, match="trigger cannot change"):
        followups.followup_rule_update(
            rule=FollowUpRule.objects.get(pk=rule["id"]), data=followups.FollowUpRuleInput(trigger="no_visit")
        )


def test_a_paused_rule_plans_nothing(api, brand, make_contact, trial_purpose):
    rule = _rule(api, active=False)
    guest = _guest(make_contact, trial_purpose)

    _visit(api, guest, timezone.now() - dt.timedelta(hours=1))

    assert not as_json(api("marketer").get(f"/followup-rules/{rule['id']}"))["active"]
    assert not FollowUp.objects.exists()


def test_a_trial_visit_imported_from_csv_plans_the_followups_like_the_api(
    api, brand, make_contact, trial_purpose, tmp_path
):
    from io import StringIO

    from django.core.management import CommandError, call_command

    _rule(api)
    guest = _guest(make_contact, trial_purpose, external_id="g-77")
    when = (timezone.now() - dt.timedelta(hours=3)).isoformat()
    path = tmp_path / "visits.csv"
    path.write_text(
        "brand,contact_external_id,kind,occurred_at,centre,external_id\n"
        f"fit24,g-77,trial_session,{when},oslo,v-1\n"
        f"fit24,g-77,trial_session,{when},oslo,v-1\n"
        f"fit24,nobody,trial_session,{when},,v-2\n",
        encoding="utf-8",
    )
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match="1 row"):
        call_command("import_visits", str(path), stdout=out, stderr=err)

    assert out.getvalue().strip() == "created 1, unchanged 1, rejected 1"
    assert "line 4: contact_external_id" in err.getvalue()
    followup = FollowUp.objects.get(contact=guest)
    assert followup.visit is not None and followup.visit.external_id == "v-1"
    assert _followups(api, guest)["Trial day 1"]["planned"] is True
