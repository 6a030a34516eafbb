"""The campaign page: schedule, pause, resume, cancel, send; the report equals the deliveries;
the CSV has ids and statuses and no addresses; test sends reach the provider and count for
nothing; the dashboard's counts, chart and denial reasons."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from comms.campaigns.models import Campaign, Delivery
from comms.studio.models import TestSend
from comms.suppression import services as ledger
from tests.campaigns.campaign_helpers import PERSON, grant, make_campaign

pytestmark = pytest.mark.django_db
OSLO = dt.timezone(dt.timedelta(hours=1))  # December: CET


@pytest.fixture
def campaign(brand, make_purpose, make_contact) -> Campaign:
    purpose = make_purpose()
    allowed = [make_contact(first_name=f"A{i}") for i in range(3)]
    for contact in allowed:
        grant(contact, purpose, "sms")
    make_contact(first_name="NoConsent")
    withdrawn = make_contact(first_name="Gone")
    grant(withdrawn, purpose, "sms")
    ledger.consent_withdraw(contact=withdrawn, channel="sms", purpose=purpose, source="api", principal=PERSON)
    return make_campaign(brand, purpose, name="Vinter-SMS")


def page_of(studio: Any, campaign: Campaign) -> str:
    return str(studio.get(f"/studio/campaigns/{campaign.pk}/").content.decode())


def test_schedule_pause_resume_and_cancel_from_the_page(studio, campaign):
    url = f"/studio/campaigns/{campaign.pk}"
    past = studio.post(f"{url}/schedule/", {"send_at": "2020-01-01T10:00"})
    assert past.status_code == 422 and "Tidspunktet er passert" in past.content.decode()
    when = (timezone.now() + dt.timedelta(days=3)).astimezone(OSLO).replace(second=0, microsecond=0)
    response = studio.post(f"{url}/schedule/", {"send_at": when.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.send_at == when
    page = page_of(studio, campaign)
    assert "Kampanjen er planlagt." in page and when.strftime("%d.%m.%Y %H:%M") in page
    assert "SMS sendes bare mellom 08:00 og 21:00 norsk tid" in page
    assert "Ingen får mer enn 4 meldinger på SMS i løpet av 7 dager" in page

    studio.post(f"{url}/pause/")
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    studio.post(f"{url}/resume/")
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    studio.post(f"{url}/cancel/")
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"
    again = studio.post(f"{url}/resume/", follow=True)
    assert again.status_code == 200 and "cannot be resumed" in again.content.decode()
    assert studio.post(f"{url}/explode/").status_code == 404
    assert studio.get(f"{url}/pause/").status_code == 405


def test_sent_campaign_report_equals_the_deliveries_and_the_csv(studio, campaign, fake_lifevision, drain):
    drain.call(studio.post, f"/studio/campaigns/{campaign.pk}/send/")
    drain()
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    in_db = Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert in_db == {"sent": 3, "denied": 2}
    page = page_of(studio, campaign)
    assert re.search(r'id="r-total">5<', page) and re.search(r'id="r-sent">3<', page)
    assert re.search(r'id="r-denied">2<', page) and re.search(r'id="r-failed">0<', page)
    assert "trakk tilbake samtykket" in page and "har ikke samtykket" in page
    assert 'hx-trigger="every 3s"' not in page  # a finished campaign is not polled

    response = studio.get(f"/studio/campaigns/{campaign.pk}/deliveries.csv")
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert Counter(row["status"] for row in rows) == in_db
    assert {int(row["delivery_id"]) for row in rows} == set(
        Delivery.objects.filter(campaign=campaign).values_list("id", flat=True)
    )
    assert "@" not in body and "+47" not in body


def test_the_report_polls_while_the_campaign_is_live(studio, campaign):
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=timezone.now())
    page = page_of(studio, campaign)
    assert f'hx-get="/studio/campaigns/{campaign.pk}/report/" hx-trigger="every 3s"' in page
    fragment = studio.get(f"/studio/campaigns/{campaign.pk}/report/")
    assert fragment.status_code == 200 and 'id="report-block"' in fragment.content.decode()
    assert "audience-size" not in fragment.content.decode()  # the poll does not run the gate's preview


def test_a_test_send_reaches_the_provider_once_and_counts_for_nothing(
    studio, campaign, fake_lifevision, settings
):
    settings.STUDIO_TEST_RECIPIENTS = ["+4799999999"]
    refused = studio.post(f"/studio/campaigns/{campaign.pk}/test/", {"recipients": "+4798765432"})
    assert refused.status_code == 422 and "is not a staff address" in refused.content.decode()
    assert fake_lifevision.messages == [] and not TestSend.objects.exists()

    response = studio.post(f"/studio/campaigns/{campaign.pk}/test/", {"recipients": "99 99 99 99"})
    assert response.status_code == 302
    [message] = fake_lifevision.messages
    assert message["to"] == "+4799999999"
    assert message["text"].startswith("[TEST] Hei Kari!") and "Avmeld:" in message["text"]
    [row] = TestSend.objects.all()
    assert (row.status, row.to, row.sent_by, str(row.external_id)) == (
        "sent", "+4799999999", "studio:mia", message["external_id"]
    )
    assert not Delivery.objects.filter(campaign=campaign).exists()
    page = page_of(studio, campaign)
    assert "+4799999999" in page and "1 testutsending, ikke telt med over." in page


def test_a_test_send_by_email_goes_to_a_studio_users_address(studio, brand, make_purpose, fake_lifevision):
    campaign = make_campaign(brand, make_purpose(), channel="email", html="<p>Hei {first_name}</p>")
    response = studio.post(f"/studio/campaigns/{campaign.pk}/test/", {"recipients": "Mia@FIT24.example"})
    assert response.status_code == 302
    [message] = fake_lifevision.messages
    assert message["to"] == "mia@fit24.example"
    assert message["subject"] == "[TEST] Nyheter for Kari"
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_dashboard_counts_charts_and_denial_reasons(studio, campaign, fake_lifevision, drain):
    drain.call(studio.post, f"/studio/campaigns/{campaign.pk}/send/")
    drain()
    opted = Delivery.objects.filter(campaign=campaign, status="sent").first()
    assert opted is not None
    ledger.consent_withdraw(
        contact=opted.contact, channel="sms", purpose=None, source="sms_keyword", principal=PERSON,
        suppression_reason="sms_stop",
    )
    page = studio.get("/studio/").content.decode()
    row = re.search(rf'<tr data-campaign="{campaign.pk}">(.*?)</tr>', page, re.S)
    assert row is not None
    numbers = re.findall(r'<td class="num">(\d+)</td>', row.group(1))
    assert numbers == ["3", "0", "0", "2", "1"]  # sent, delivered, failed, denied, opt-outs
    assert "FIT24 – SMS" in page and "<svg" in page and "3 meldinger, 1 avmeldinger" in page
    assert "trakk tilbake samtykket" in page


@pytest.mark.parametrize("recipients", ["not a number", "", "+4799999999\n+4799999998\n+4799999997\n+4799999996\n+4799999995\n+4799999994"])
def test_a_bad_test_send_is_a_form_error_and_sends_nothing(studio, campaign, fake_lifevision, settings, recipients):
    settings.STUDIO_TEST_RECIPIENTS = ["+4799999999"]
    response = studio.post(f"/studio/campaigns/{campaign.pk}/test/", {"recipients": recipients})
    assert response.status_code == 422
    assert 'class="errorlist"' in response.content.decode()
    assert fake_lifevision.messages == [] and not TestSend.objects.exists()


def test_a_bad_send_time_is_a_form_error(studio, campaign):
    response = studio.post(f"/studio/campaigns/{campaign.pk}/schedule/", {"send_at": "i morgen"})
    assert response.status_code == 422 and "Oppgi gyldig dato og tidspunkt." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "draft"
