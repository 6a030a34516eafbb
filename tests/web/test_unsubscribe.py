"""The unsubscribe link: GET shows choices and changes nothing; RFC 8058 one-click and the page's
own form each land exactly one ledger event, and repeats land none."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from comms import links
from comms.campaigns.models import Campaign, Delivery
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, ConsentEvidence, Suppression
from comms.web.models import MemberMessage
from tests.web.conftest import BROWSER_UA, events, token_for

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"


def one_click(client: Client, token: str, body: str = ONE_CLICK, ua: str = "Gmail-OneClick/1.0") -> Any:
    return client.post(
        f"/u/{token}", body, content_type="application/x-www-form-urlencoded", headers={"User-Agent": ua}
    )


def allowed(contact, purpose, channel="email") -> bool:
    return gate.check(contact=contact, channel=channel, purpose=purpose).allowed


def test_the_page_shows_who_writes_what_for_and_the_choices_in_norwegian(client, member, newsletter):
    response = client.get(f"/u/{token_for(member, newsletter)}")

    assert response.status_code == 200
    body = response.content.decode()
    assert '<html lang="nb">' in body
    assert "Meld deg av" in body
    assert "FIT24 sender deg «fit24-newsletter» på e-post til k•••@example.no." in body
    assert "Bare «fit24-newsletter»" in body
    assert "All e-post fra FIT24" in body
    assert "All markedsføring fra FIT24" in body
    assert "Ja takk, FIT24 kan sende meg nyhetsbrev" in body  # the notice they agreed to
    assert 'hreflang="en"' in body
    assert response["Cache-Control"] == "no-store"


def test_the_page_is_in_english_when_asked(client, member, newsletter):
    body = client.get(f"/u/{token_for(member, newsletter)}?lang=en").content.decode()

    assert '<html lang="en">' in body
    assert "Unsubscribe" in body and "All marketing from FIT24" in body
    assert 'action="/u/' in body and '?lang=en"' in body  # the form keeps the language


def test_get_and_head_change_nothing_however_often_a_scanner_comes(client, member, newsletter):
    token = token_for(member, newsletter)
    before = ConsentEvent.objects.count()

    for _ in range(25):
        assert client.get(f"/u/{token}").status_code == 200
        assert client.head(f"/u/{token}").status_code == 200
        assert client.get(f"/preferences/{token}").status_code == 200

    assert ConsentEvent.objects.count() == before
    assert Suppression.objects.count() == 0
    assert MemberMessage.objects.count() == 0
    assert allowed(member, newsletter)


def test_one_click_post_withdraws_the_purpose_at_once_with_evidence(member, newsletter):
    client = Client(enforce_csrf_checks=True)  # no cookie, no CSRF token: RFC 8058
    before = ConsentEvent.objects.count()

    response = one_click(client, token_for(member, newsletter))

    assert response.status_code == 200
    assert ConsentEvent.objects.count() == before + 1
    [event] = events(contact=member, action="withdraw")
    assert (event.source, event.channel, event.purpose_id) == ("one_click", "email", newsletter.pk)
    assert event.actor == "self"
    evidence = ConsentEvidence.objects.get(event=event)
    assert (evidence.ip, evidence.user_agent) == ("127.0.0.1", "Gmail-OneClick/1.0")
    assert "set-cookie" not in {k.lower() for k in response.headers}


def test_one_click_blocks_the_very_next_send(member, newsletter):
    assert allowed(member, newsletter)

    one_click(Client(enforce_csrf_checks=True), token_for(member, newsletter))

    decision = gate.check(contact=member, channel="email", purpose=newsletter)
    assert (decision.allowed, decision.reason) == (False, "withdrawn")
    assert allowed(member, newsletter, channel="sms")  # the SMS consent was not touched


def test_one_click_as_multipart_form_data_works_too(member, newsletter):
    client = Client(enforce_csrf_checks=True)

    response = client.post(f"/u/{token_for(member, newsletter)}", {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert not allowed(member, newsletter)


def test_repeated_one_click_posts_add_no_second_event(member, newsletter):
    client = Client(enforce_csrf_checks=True)
    token = token_for(member, newsletter)

    for _ in range(10):
        response = one_click(client, token)
        assert response.status_code == 200

    assert len(events(contact=member, action="withdraw")) == 1
    assert "Du var allerede meldt av" in response.content.decode()


@pytest.mark.parametrize(
    "body",
    [
        "",
        "scope=purpose",
        "List-Unsubscribe=Yes",
        "List-Unsubscribe=one-click",
        "scope=all&List-Unsubscribe=",
    ],
)
def test_a_post_without_one_click_and_without_a_csrf_token_changes_nothing(member, newsletter, body):
    client = Client(enforce_csrf_checks=True)
    before = ConsentEvent.objects.count()

    response = one_click(client, token_for(member, newsletter), body=body)

    assert response.status_code == 403
    assert "Skjemaet er utløpt" in response.content.decode()
    assert ConsentEvent.objects.count() == before
    assert allowed(member, newsletter)


@pytest.mark.parametrize(
    ("scope", "action", "channel", "whole_channel", "message"),
    [
        ("purpose", "withdraw", "email", False, "Du får ikke lenger «fit24-newsletter» fra FIT24 på e-post."),
        ("channel", "withdraw", "email", True, "Du får ikke lenger e-post fra FIT24."),
        (
            "all",
            "object",
            "",
            True,
            "FIT24 sender deg ikke lenger markedsføring, verken på e-post eller SMS.",
        ),
    ],
)
def test_the_form_applies_the_choice_made_once(
    browser, member, newsletter, offers, staff, scope, action, channel, whole_channel, message
):
    ledger.consent_grant(
        contact=member, channel="email", purpose=offers, basis="consent", source="front_desk", principal=staff
    )
    path = f"/u/{token_for(member, newsletter)}"
    before = ConsentEvent.objects.count()

    response = browser.submit(path, {"scope": scope})

    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    assert "Gå til innstillingene dine" in body
    assert ConsentEvent.objects.count() == before + 1
    event = ConsentEvent.objects.latest("pk")
    assert (event.action, event.source, event.channel) == (action, "unsubscribe_link", channel)
    assert event.purpose_id == (None if whole_channel else newsletter.pk)
    assert ConsentEvidence.objects.get(event=event).user_agent == BROWSER_UA

    assert not allowed(member, newsletter)
    assert allowed(member, offers) is (scope == "purpose")
    assert allowed(member, newsletter, channel="sms") is (scope != "all")

    again = browser.submit(path, {"scope": scope})
    assert "Du var allerede meldt av" in again.content.decode()
    assert ConsentEvent.objects.count() == before + 1


def test_the_form_without_a_choice_asks_again_and_changes_nothing(browser, member, newsletter):
    before = ConsentEvent.objects.count()

    response = browser.submit(f"/u/{token_for(member, newsletter)}", {"scope": "everything"})

    assert response.status_code == 400
    assert "Velg ett av alternativene." in response.content.decode()
    assert ConsentEvent.objects.count() == before


def test_unsubscribing_again_after_a_pending_re_grant_cancels_it(browser, member, newsletter):
    """A withdrawal, a re-grant awaiting confirmation, then the unsubscribe link: that is new
    information (the pending grant must not be confirmable any more), so it is recorded."""
    token = token_for(member, newsletter)
    one_click(Client(), token)
    ledger.consent_grant(
        contact=member,
        channel="email",
        purpose=newsletter,
        basis="consent",
        source="preference_centre",
        principal=ledger.Principal(actor="self"),
    )

    one_click(Client(), token)
    one_click(Client(), token)

    assert len(events(contact=member, action="withdraw")) == 2


def test_an_sms_short_link_leads_to_the_same_page(client, member, newsletter):
    campaign = Campaign.objects.create(
        brand=member.brand, name="SMS", channel="sms", purpose=newsletter, text="Hei", status="sent"
    )
    Delivery.objects.create(
        campaign=campaign,
        contact=member,
        channel="sms",
        external_id=uuid.uuid4(),
        short_code="AbCdE12345",
        status="sent",
        sent_at=timezone.now(),
    )

    response = client.get("/s/AbCdE12345")

    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert (
        "FIT24 sender deg «fit24-newsletter» på SMS til +47\u00a0•••\u00a0••\u00a0" in page.content.decode()
    )
    assert "Alle SMS fra FIT24" in page.content.decode()
    assert ConsentEvent.objects.filter(action="withdraw").count() == 0

    one_click(Client(), response["Location"].removeprefix("/u/"))
    [event] = events(contact=member, action="withdraw")
    assert (event.channel, event.purpose_id, event.source) == ("sms", newsletter.pk, "one_click")


def test_unknown_and_expired_short_links_get_a_friendly_page(client, member, newsletter):
    campaign = Campaign.objects.create(
        brand=member.brand, name="SMS", channel="sms", purpose=newsletter, text="Hei", status="sent"
    )
    Delivery.objects.create(
        campaign=campaign,
        contact=member,
        channel="sms",
        external_id=uuid.uuid4(),
        short_code="OldOldOld1",
        status="sent",
        sent_at=timezone.now() - dt.timedelta(days=400),
    )

    assert client.get("/s/NoSuchCode").status_code == 404
    assert client.get("/s/%27%3B--").status_code == 404
    expired = client.get("/s/OldOldOld1")
    assert expired.status_code == 410
    assert "Lenken er utløpt" in expired.content.decode()


# --- bad tokens -----------------------------------------------------------------------------------


def _expired_token(member, newsletter, monkeypatch) -> str:
    long_ago = timezone.now().timestamp() - 200 * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: long_ago)
    token = token_for(member, newsletter)
    monkeypatch.undo()
    return token


def test_tampered_truncated_and_foreign_tokens_get_a_friendly_page(client, member, newsletter, settings):
    good = token_for(member, newsletter)
    with_other_secret = signing.TimestampSigner(key="x" * 50, salt=links.SALT).sign(
        f"{member.pk}.{newsletter.pk}.e.{good.split('.')[3][:12]}"
    )
    confirm_token = links.make_confirm_token(grant_ids=[1])
    bad = [
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # tampered signature
        good[: len(good) // 2],  # truncated
        good.replace(f"{member.pk}.", f"{member.pk + 1}.", 1),  # another contact, same signature
        with_other_secret,  # signed elsewhere
        confirm_token,  # a confirmation link is no unsubscribe link
        "lost-and-found",
        "%00",
        "x" * 3000,
    ]
    before = ConsentEvent.objects.count()

    for token in bad:
        for method in ("get", "post"):
            response = getattr(client, method)(f"/u/{token}")
            assert response.status_code in (400, 404), token
            body = response.content.decode()
            assert "Lenken virker ikke" in body
            assert 'name="address"' in body  # the lost-link form
            assert "Traceback" not in body
        assert one_click(Client(), token).status_code in (400, 404)

    assert ConsentEvent.objects.count() == before


def test_an_expired_token_gets_410_with_the_lost_link_form(client, member, newsletter, monkeypatch):
    token = _expired_token(member, newsletter, monkeypatch)
    before = ConsentEvent.objects.count()

    response = client.get(f"/u/{token}")
    assert response.status_code == 410
    assert "Lenken er utløpt" in response.content.decode()
    assert 'name="address"' in response.content.decode()
    assert one_click(Client(), token).status_code == 410
    assert client.get(f"/preferences/{token}").status_code == 410
    assert ConsentEvent.objects.count() == before


def test_a_link_is_useless_once_the_address_is_someone_elses(client, member, newsletter):
    token = token_for(member, newsletter)
    member.email = "new-owner@example.no"
    member.save(update_fields=["email"])

    assert client.get(f"/u/{token}").status_code == 404
    assert one_click(Client(), token).status_code == 404
    assert events(contact=member, action="withdraw") == []


def test_a_link_for_another_brands_purpose_is_refused(client, member, make_purpose, other_brand):
    foreign = make_purpose(key="k24-news", brand=other_brand)

    assert client.get(f"/u/{token_for(member, foreign)}").status_code == 404


def test_a_preferences_link_without_a_purpose_cannot_unsubscribe(client, member):
    assert client.get(f"/u/{token_for(member, None)}").status_code == 404
