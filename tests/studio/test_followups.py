"""Follow-up rules in the studio: created and edited through the follow-up services, watched
as planned / sent / stopped with the reasons in words; another brand's rule is a 404."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from comms.campaigns.models import Delivery, FollowUpRule
from comms.suppression import services as ledger
from tests.campaigns.campaign_helpers import PERSON, grant

pytestmark = pytest.mark.django_db


def rule_form(**fields):
    data = {
        "name": "SMS dagen etter prøvetimen",
        "trigger": "trial_visit",
        "delay_hours": "24",
        "purpose": "trial-followup",
        "text": "Hei {first_name}! Takk for prøvetimen.",
        "sms_max_segments": "2",
        "active": "on",
    }
    data.update(fields)
    return data


@pytest.fixture
def trial_purpose(make_purpose):
    return make_purpose(key="trial-followup", channels=("sms", "email"))


def test_a_marketer_creates_a_rule_and_watches_what_it_plans_and_why_not(
    studio, trial_purpose, make_contact, api
):
    response = studio.post("/studio/followups/new/?brand=fit24&channel=sms", rule_form())
    assert response.status_code == 302
    rule = FollowUpRule.objects.get()
    assert response["Location"] == f"/studio/followups/{rule.pk}/"
    assert (rule.trigger, rule.delay_hours, rule.campaign.channel, rule.campaign.status) == (
        "trial_visit", 24, "sms", "sending"
    )
    guests = [make_contact(kind="guest", first_name=f"G{i}") for i in range(3)]
    for guest in guests:
        grant(guest, trial_purpose, "sms")
        visit = api("staff").post(
            f"/contacts/{guest.pk}/visits", {"kind": "trial_session", "occurred_at": timezone.now().isoformat()}
        )
        assert visit.status_code == 201, visit.content
    # One guest withdrew meanwhile; the send path would stop theirs. Mark it as the send path does.
    ledger.consent_withdraw(contact=guests[0], channel="sms", purpose=None, source="sms_keyword", principal=PERSON)
    Delivery.objects.filter(campaign=rule.campaign, contact=guests[0]).update(status="denied", reason="withdrawn")

    page = studio.get(f"/studio/followups/{rule.pk}/").content.decode()
    assert re.search(r'id="f-planned">2<', page) and re.search(r'id="f-stopped">1<', page)
    assert "trakk tilbake samtykket" in page
    upcoming = re.search(r'<table id="f-upcoming">.*?</table>', page, re.S)
    assert upcoming is not None  # the next due, by contact id (no names)
    assert re.findall(r"<td>(\d+)</td></tr>", upcoming.group(0)) == [str(guests[1].pk), str(guests[2].pk)]
    assert "Hei Kari! Takk for prøvetimen." in page  # the message as a sample person gets it
    listing = studio.get("/studio/followups/").content.decode()
    row = re.search(rf'<tr data-rule="{rule.pk}">(.*?)</tr>', listing, re.S)
    assert row is not None and re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == ["2", "0", "1"]
    csv = b"".join(studio.get(f"/studio/campaigns/{rule.campaign_id}/deliveries.csv").streaming_content)
    assert csv.decode().count("\n") == 4


def test_editing_a_rule_changes_timing_and_message_and_can_pause_it(studio, trial_purpose):
    studio.post("/studio/followups/new/?brand=fit24&channel=sms", rule_form())
    rule = FollowUpRule.objects.get()
    response = studio.post(
        f"/studio/followups/{rule.pk}/",
        rule_form(delay_hours="48", text="Hei igjen {first_name}!", trigger="no_visit", active=""),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    rule.campaign.refresh_from_db()
    assert (rule.delay_hours, rule.trigger, rule.campaign.text, rule.campaign.status) == (
        48, "trial_visit", "Hei igjen {first_name}!", "paused"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"delay_hours": "99999"}, "must be from 0 to"),
        ({"trigger": "no_visit"}, "Oppgi antall dager uten besøk."),
        ({"trigger": "full_moon"}, "Velg et gyldig valg."),
        ({"text": "Hei {fornavn}"}, "unknown field {fornavn}"),
    ],
)
def test_a_bad_rule_is_a_form_error(studio, trial_purpose, fields, message):
    response = studio.post("/studio/followups/new/?brand=fit24&channel=sms", rule_form(**fields))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not FollowUpRule.objects.exists()


def test_another_brands_rule_is_not_found(studio, other_brand, make_purpose):
    from comms.campaigns.followups.services import FollowUpRuleInput, followup_rule_create

    make_purpose(key="k24-trial", brand=other_brand, channels=("sms",))
    rule = followup_rule_create(
        brand=other_brand,
        data=FollowUpRuleInput(name="x", trigger="trial_visit", delay_hours=1, channel="sms", purpose="k24-trial",
                               text="Hei"),
    )
    assert studio.get(f"/studio/followups/{rule.pk}/").status_code == 404
    assert studio.post(f"/studio/followups/{rule.pk}/", rule_form()).status_code == 404
    assert studio.get(f"/studio/campaigns/{rule.campaign_id}/deliveries.csv").status_code == 404
    assert studio.get(f"/studio/campaigns/{rule.campaign_id}/").status_code == 404
