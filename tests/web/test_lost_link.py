"""The lost-link form: a fresh preferences link to every contact with the address, the same answer
for unknown addresses, and rate limits per client and per address."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from comms.campaigns.sending import RetryLater
from comms.suppression.models import ConsentEvent
from comms.web.messages import member_message_send
from comms.web.models import MemberMessage

pytestmark = pytest.mark.django_db


def ask(address: str, ip: str = "10.1.2.3", lang: str = "") -> Any:
    client = Client(REMOTE_ADDR=ip)
    return client.post(f"/u/lost{lang}", {"address": address})


def test_the_form_is_a_plain_labelled_page(client):
    body = client.get("/u/lost").content.decode()

    assert '<label for="lost-address">E-post eller mobilnummer</label>' in body
    assert 'id="lost-address" name="address"' in body
    assert "<script" not in body


def test_a_known_and_an_unknown_address_get_the_same_answer(member, make_contact, other_brand):
    make_contact(email="kari@example.no", brand=other_brand.key)  # the same person at another brand

    known = ask("  Kari@Example.no ")
    unknown = ask("nobody@example.no", ip="10.9.9.9")

    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().replace("kari@", "X@") == unknown.content.decode().replace("nobody@", "X@")
    assert "Sjekk innboksen din" in known.content.decode()
    messages = MemberMessage.objects.order_by("contact__brand__key")
    assert [(m.kind, m.channel, m.contact.brand.key) for m in messages] == [
        ("link", "email", "fit24"),
        ("link", "email", "klinikk24"),
    ]
    assert ConsentEvent.objects.filter(source="preference_centre").count() == 0


def test_the_fresh_link_opens_the_preference_centre(member, newsletter, fake_lifevision):
    ask(member.mobile.replace("+47", ""))  # a Norwegian number as people type it
    [message] = MemberMessage.objects.all()
    assert message.channel == "sms"

    member_message_send(message_id=message.pk)

    [sent] = fake_lifevision.messages
    assert sent["to"] == member.mobile
    link = re.search(r"https?://[^/]+(/preferences/\S+)", sent["text"])
    assert link, sent["text"]
    path = link.group(1)
    page = Client().get(path)
    assert page.status_code == 200
    assert "Dine innstillinger" in page.content.decode()
    assert "på SMS til" in page.content.decode()


def test_the_link_message_is_in_english_when_asked_in_english(member, fake_lifevision):
    ask("kari@example.no", lang="?lang=en")

    member_message_send(message_id=MemberMessage.objects.get().pk)

    [sent] = fake_lifevision.messages
    assert sent["subject"] == "The link to your preferences with FIT24"
    assert "?lang=en" in sent["text"]


def test_a_malformed_address_is_asked_again(client):
    response = ask("not an address")

    assert response.status_code == 400
    assert "Skriv en gyldig e-postadresse eller et mobilnummer." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert MemberMessage.objects.count() == 0


def test_each_client_is_rate_limited(member, settings):
    settings.LOST_LINK_LIMIT_PER_IP = (3, 3600)

    answers = [ask(f"person{i}@example.no", ip="10.0.0.7").status_code for i in range(5)]

    assert answers == [200, 200, 200, 429, 429]
    assert ask("kari@example.no", ip="10.0.0.7").status_code == 429
    assert MemberMessage.objects.count() == 0
    assert ask("kari@example.no", ip="10.0.0.8").status_code == 200  # another client
    assert MemberMessage.objects.count() == 1


def test_each_address_is_rate_limited_without_saying_so(member, settings):
    settings.LOST_LINK_LIMIT_PER_ADDRESS = (2, 3600)

    answers = [ask("kari@example.no", ip=f"10.0.1.{i}") for i in range(4)]

    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert MemberMessage.objects.count() == 2  # no mail bombing through many clients
    ask("nobody@example.no", ip="10.0.2.1")
    assert ask("nobody@example.no", ip="10.0.2.2").content == answers[0].content.replace(b"kari@", b"nobody@")


def test_the_form_needs_its_csrf_token(member):
    response = Client(enforce_csrf_checks=True).post("/u/lost", {"address": "kari@example.no"})

    assert response.status_code == 403
    assert MemberMessage.objects.count() == 0


def test_staff_see_every_member_message_read_only_in_the_admin(member, admin_client):
    ask("kari@example.no")
    message = MemberMessage.objects.get()

    listing = admin_client.get("/admin/web/membermessage/")
    assert listing.status_code == 200
    assert f"/admin/web/membermessage/{message.pk}/change/" in listing.content.decode()
    assert admin_client.get("/admin/web/membermessage/add/").status_code == 403


def test_a_fresh_link_waits_out_an_outage_and_fails_only_after_the_retry_window(
    member, fake_lifevision, settings
):
    settings.SEND_RETRY_WINDOW = 60
    ask("kari@example.no")
    message = MemberMessage.objects.get()
    fake_lifevision.fail_next(1, status=429, retry_after=0.05)
    with pytest.raises(RetryLater):
        member_message_send(message_id=message.pk)
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 0)  # a 429 uses up nothing

    fake_lifevision.outage()
    time.sleep(0.06)
    with pytest.raises(RetryLater):
        member_message_send(message_id=message.pk)
    MemberMessage.objects.filter(pk=message.pk).update(created_at=timezone.now() - dt.timedelta(seconds=61))
    assert member_message_send(message_id=message.pk) == "failed"
    message.refresh_from_db()
    assert message.attempts == 2 and "503" in message.last_error
    assert fake_lifevision.messages == []
