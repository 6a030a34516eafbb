"""The composer: lists, the audience builder's live counts (the real gate, equal to the API's
preview), the message preview (opt-out line, segments, footer, headers) and clear errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from comms.campaigns.models import Campaign
from comms.contacts.models import Tag
from comms.suppression import services as ledger
from tests.campaigns.campaign_helpers import PERSON, grant, sms_stop

pytestmark = pytest.mark.django_db

NEW_SMS = "/studio/campaigns/new/?brand=fit24&channel=sms"
NEW_EMAIL = "/studio/campaigns/new/?brand=fit24&channel=email"
PREVIEW_SMS = "/studio/campaigns/preview/?brand=fit24&channel=sms"
PREVIEW_EMAIL = "/studio/campaigns/preview/?brand=fit24&channel=email"


@pytest.fixture
def people(make_contact, make_purpose) -> dict[str, Any]:
    """Five members with SMS consent to the newsletter, then: one withdrew, one objected, one
    replied STOPP; a sixth never consented; a guest with consent is outside a members-only audience."""
    purpose = make_purpose(key="fit24-newsletter", channels=("email", "sms"))
    members = [make_contact(first_name=f"M{i}", tags=["yoga"] if i < 3 else []) for i in range(6)]
    guest = make_contact(kind="guest", first_name="G")
    for contact in [*members[:5], guest]:
        grant(contact, purpose, "sms")
    ledger.consent_withdraw(
        contact=members[0], channel="sms", purpose=purpose, source="unsubscribe_link", principal=PERSON
    )
    ledger.objection_record(contact=members[1], source="preference_centre", principal=PERSON)
    sms_stop(members[2])
    return {"purpose": purpose, "members": members, "guest": guest}


def form(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "Vintertilbud", "purpose": "fit24-newsletter", "text": "Hei {first_name}!"}
    data.update(fields)
    return data


def test_the_sms_composer_offers_only_purposes_that_allow_sms(studio, make_purpose):
    make_purpose(key="fit24-newsletter", channels=("email", "sms"))
    make_purpose(key="fit24-email-only", channels=("email",))
    Tag.objects.create(name="yoga")
    page = studio.get(NEW_SMS).content.decode()
    assert 'value="fit24-newsletter"' in page and 'value="fit24-email-only"' not in page
    assert 'value="fit24-email-only"' in studio.get(NEW_EMAIL).content.decode()
    for merge_field in ("{first_name}", "{last_name}", "{brand}", "{centre}"):
        assert merge_field in page
    # every audience filter of the API has a labelled field
    for name in ("kinds", "centres", "tags", "last_visit_after", "last_visit_before", "age_min", "age_max"):
        assert f'name="{name}"' in page


def test_the_live_counts_are_the_gates_and_equal_the_api_preview(studio, people, api):
    response = studio.post(PREVIEW_SMS, form(kinds=["member"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert re.search(r'id="audience-size">6<', page)
    assert re.search(r'id="would-send">2<', page)
    assert re.search(r'id="would-deny">4<', page)
    assert "trakk tilbake samtykket" in page
    assert "reservert mot markedsføring" in page
    assert "svarte STOPP" in page
    assert "har ikke samtykket" in page

    created = api("marketer").post(
        "/campaigns",
        {"brand": "fit24", "name": "x", "channel": "sms", "purpose": "fit24-newsletter",
         "audience": {"kinds": ["member"]}, "text": "Hei {first_name}!"},
    )
    assert created.status_code == 201, created.content
    api_preview = api("marketer").post(f"/campaigns/{created.json()['id']}/preview").json()
    assert api_preview["audience"] == 6 and api_preview["would_send"] == 2
    for code, n in api_preview["would_deny"].items():
        assert re.search(rf'data-reason="{re.escape(code)}"><td>[^<]+</td><td class="num">{n}<', page), code


def test_the_audience_filters_narrow_the_count(studio, people):
    page = studio.post(PREVIEW_SMS, form(kinds=["member"], tags=["yoga"])).content.decode()
    assert re.search(r'id="audience-size">3<', page)
    assert re.search(r'id="would-send">0<', page)
    page = studio.post(PREVIEW_SMS, form(kinds=["member", "guest"])).content.decode()
    assert re.search(r'id="audience-size">7<', page) and re.search(r'id="would-send">3<', page)


def test_the_sms_preview_shows_the_opt_out_line_and_the_segments(studio, people):
    page = studio.post(PREVIEW_SMS, form(text="Hei {first_name}! 20% på årskort i dag.")).content.decode()
    assert "Hei Kari! 20% på årskort i dag." in page
    assert re.search(r'id="opt-out-line">Avmeld: http[^<]+/s/\w+<', page)
    assert re.search(r"\d+ tegn, 1 segment\(er\) \(GSM\)", page)
    long_page = studio.post(PREVIEW_SMS, form(text="Lang tekst. " * 40, sms_max_segments=2)).content.decode()
    assert "SMS-en er 4 segmenter; grensen er 2." in long_page


def test_the_email_preview_has_the_footer_and_the_unsubscribe_headers(studio, people):
    page = studio.post(
        PREVIEW_EMAIL, form(subject="Nyheter for {first_name}", html="<h1>Hei {first_name}</h1>")
    ).content.decode()
    assert "Nyheter for Kari" in page
    assert "List-Unsubscribe-Post" in page and "List-Unsubscribe=One-Click" in page
    assert re.search(r"Meld deg av: http[^\s<]+/u/", page)
    assert 'sandbox srcdoc="&lt;h1&gt;Hei Kari&lt;/h1&gt;' in page
    no_subject = studio.post(PREVIEW_EMAIL, form(subject="")).content.decode()
    assert "E-posten mangler emne." in no_subject


def test_saving_creates_a_draft_with_the_audience(studio, people):
    response = studio.post(
        NEW_SMS, form(kinds=["member"], centres=["oslo"], tags=["yoga"], age_min="18", age_max="67",
                      last_visit_after="2026-01-01", action="save")
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert response["Location"] == f"/studio/campaigns/{campaign.pk}/"
    assert campaign.status == "draft" and campaign.created_by == "studio:mia"
    assert campaign.audience == {
        "kinds": ["member"], "centres": ["oslo"], "tags": ["yoga"], "age_min": 18, "age_max": 67,
        "last_visit_after": "2026-01-01",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"age_min": "40", "age_max": "20"}, "Må være minst like høy som laveste alder."),
        ({"age_min": "abc"}, "Oppgi et heltall."),
        ({"centres": ["atlantis"]}, "atlantis"),
        ({"last_visit_after": "2026-13-45"}, "Oppgi en gyldig dato."),
        ({"purpose": "no-such-purpose"}, "no-such-purpose"),
        ({"text": "Hei {fornavn}"}, "unknown field {fornavn}"),
        ({"text": ""}, "a campaign needs its message text"),
    ],
)
def test_bad_input_is_a_form_error_not_a_500(studio, people, fields, message):
    response = studio.post(NEW_SMS, form(action="save", **fields))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Campaign.objects.exists()
    assert studio.post(PREVIEW_SMS, form(**fields)).status_code == 200


def test_editing_a_draft_keeps_it_and_refuses_after_the_start(studio, people):
    studio.post(NEW_SMS, form(action="save"))
    campaign = Campaign.objects.get()
    page = studio.get(f"/studio/campaigns/{campaign.pk}/edit/").content.decode()
    assert 'value="Vintertilbud"' in page
    response = studio.post(f"/studio/campaigns/{campaign.pk}/edit/", form(name="Nytt navn", action="save"))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Nytt navn"
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=campaign.created_at)
    assert studio.post(f"/studio/campaigns/{campaign.pk}/edit/", form(name="Igjen")).status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Nytt navn"


def test_a_large_audience_is_counted_as_a_job_on_the_campaign_page(studio, people, settings, drain, api):
    settings.PREVIEW_INLINE_MAX = 3
    page = studio.post(PREVIEW_SMS, form(kinds=["member"])).content.decode()
    assert re.search(r'id="audience-size">6<', page) and 'id="would-send"' not in page
    assert "Over 3 personer" in page and "Lagre kampanjen og tell dem på kampanjesiden." in page
    studio.post(NEW_SMS, form(kinds=["member"], action="save"))
    campaign = Campaign.objects.get()
    page = studio.get(f"/studio/campaigns/{campaign.pk}/").content.decode()
    assert "Tell med samtykkesjekken" in page and 'id="would-send"' not in page
    drain.call(studio.post, f"/studio/campaigns/{campaign.pk}/count/")
    queued = studio.get(f"/studio/campaigns/{campaign.pk}/").content.decode()
    assert 'hx-trigger="every 3s" hx-select="#audience-card"' in queued
    drain()
    page = studio.get(f"/studio/campaigns/{campaign.pk}/").content.decode()
    assert re.search(r'id="would-send">2<', page) and re.search(r'id="would-deny">4<', page)
    assert "trakk tilbake samtykket" in page and "Tell på nytt" in page
    assert 'hx-select="#audience-card"' not in page
    settings.PREVIEW_INLINE_MAX = 1000
    inline = studio.post(PREVIEW_SMS, form(kinds=["member"])).content.decode()
    for code_count in re.findall(r'data-reason="[^"]+"><td>[^<]+</td><td class="num">\d+<', inline):
        assert code_count in page  # the job's counts equal the inline ones
