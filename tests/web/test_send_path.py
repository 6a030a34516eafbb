"""From a real campaign message to the next send: the links and headers the send path puts in an
email and an SMS lead to the member pages, and an unsubscribe there stops the very next campaign."""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from comms.campaigns import services
from comms.campaigns.models import Delivery
from comms.campaigns.services import CampaignInput
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent
from comms.web import services as web_services
from comms.web.models import MemberMessage
from tests.web.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)


def send(brand, purpose, channel, name):
    data = CampaignInput(
        name=name, channel=channel, purpose=purpose.key, text="Hei {first_name}! Nytt fra oss."
    )
    if channel == "email":
        data.subject = "Nyheter fra FIT24"
    campaign = services.campaign_create(brand=brand, data=data)
    services.campaign_send_now(campaign=campaign)
    return campaign


def test_the_one_click_header_of_a_sent_email_stops_the_very_next_campaign(
    brand, make_contact, newsletter, staff, fake_lifevision, run_actors, settings
):
    settings.PUBLIC_BASE_URL = "http://testserver"
    kari, ola = make_contact(email="kari@example.no"), make_contact(email="ola@example.no")
    for contact in (kari, ola):
        ledger.consent_grant(
            contact=contact,
            channel="email",
            purpose=newsletter,
            basis="consent",
            source="front_desk",
            principal=staff,
        )
    send(brand, newsletter, "email", "Første")
    run_actors()
    [to_kari] = [m for m in fake_lifevision.messages if m["to"] == "kari@example.no"]
    assert to_kari["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = re.fullmatch(r"<http://testserver(/u/\S+)>", to_kari["headers"]["List-Unsubscribe"])
    assert header, to_kari["headers"]
    url = header.group(1)

    # What a mailbox provider does when Kari presses its "unsubscribe" button (RFC 8058).
    response = Client(enforce_csrf_checks=True).post(
        url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    [event] = ConsentEvent.objects.filter(contact=kari, action="withdraw")
    assert (event.source, event.channel, event.purpose_id) == ("one_click", "email", newsletter.pk)

    fake_lifevision.reset()
    second = send(brand, newsletter, "email", "Andre")
    run_actors()
    assert [m["to"] for m in fake_lifevision.messages] == ["ola@example.no"]
    denied = Delivery.objects.get(campaign=second, contact=kari)
    assert (denied.status, denied.reason, denied.decision_event_id) == ("denied", "withdrawn", event.pk)


def test_the_short_link_of_a_sent_sms_leads_to_the_unsubscribe_page(
    brand, make_contact, newsletter, staff, fake_lifevision, run_actors, settings
):
    settings.PUBLIC_BASE_URL = "http://testserver"
    kari = make_contact()
    ledger.consent_grant(
        contact=kari, channel="sms", purpose=newsletter, basis="consent", source="front_desk", principal=staff
    )
    send(brand, newsletter, "sms", "SMS")
    run_actors()
    [sms] = fake_lifevision.messages
    link = re.search(r"http://testserver(/s/\w+)", sms["text"])
    assert link, sms["text"]
    path = link.group(1)

    client = Client()
    page = client.get(path, follow=True)
    assert page.status_code == 200
    assert "Alle SMS fra FIT24" in page.content.decode()
    assert not ConsentEvent.objects.filter(contact=kari, action="withdraw").exists()


def test_concurrent_one_click_posts_land_exactly_one_event(member, newsletter):
    """A mailbox provider and a link scanner hitting the same link at the same instant."""
    path = f"/u/{token_for(member, newsletter)}"
    start = Barrier(8)

    def post(_: int) -> int:
        try:
            start.wait()
            return (
                Client()
                .post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
                .status_code
            )
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, range(8)))

    assert statuses == [200] * 8
    assert ConsentEvent.objects.filter(contact=member, action="withdraw").count() == 1


def test_a_requested_link_is_queued_on_commit_and_sent_by_the_actor(member, fake_lifevision, run_actors):
    response = Client(REMOTE_ADDR="10.3.3.3").post("/u/lost", {"address": "kari@example.no"})
    assert response.status_code == 200

    run_actors()

    [sent] = fake_lifevision.messages
    assert (sent["to"], sent["subject"]) == ("kari@example.no", "Lenken til innstillingene dine hos FIT24")
    assert sent["tags"] == ["member:link"]
    assert MemberMessage.objects.get().status == "sent"


def test_the_sweep_re_enqueues_messages_the_broker_lost(member, broker):
    Client().post("/u/lost", {"address": "kari@example.no"})
    broker.flush_all()  # the broker lost it
    MemberMessage.objects.update(created_at=timezone.now() - dt.timedelta(minutes=10))

    assert web_services.member_messages_sweep() == 1
    assert broker.queues["callbacks"].qsize() == 1
