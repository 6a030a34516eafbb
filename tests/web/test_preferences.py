"""The preference centre and double opt-in: every purpose with its state and notice; changes are
ledger events; a (re-)grant is not effective before the person confirms from their own inbox."""

from __future__ import annotations

import re

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from comms import links
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, ConsentEvidence
from comms.web.messages import member_message_send
from comms.web.models import MemberMessage
from tests.web.conftest import BROWSER_UA, events, token_for

pytestmark = pytest.mark.django_db


def allowed(contact, purpose, channel="email") -> bool:
    return gate.check(contact=contact, channel=channel, purpose=purpose).allowed


def reason(contact, purpose, channel="email") -> str:
    return gate.check(contact=contact, channel=channel, purpose=purpose).reason


def confirm_path(message: MemberMessage) -> str:
    return f"/confirm/{links.make_confirm_token(grant_ids=message.grant_ids)}"


def test_it_lists_every_purpose_of_the_brand_and_channel_with_state_and_notice(
    client, member, newsletter, offers, make_purpose, other_brand
):
    make_purpose(key="fit24-sms-only", channels=("sms",))
    make_purpose(key="k24-news", brand=other_brand, notice_text="Someone else's notice")

    response = client.get(f"/preferences/{token_for(member, None)}")

    assert response.status_code == 200
    body = response.content.decode()
    assert "Dine innstillinger" in body
    assert "Velg hva FIT24 kan sende deg på e-post til k•••@example.no." in body
    assert re.search(rf'value="{newsletter.pk}"[^>]*checked', body)
    assert re.search(rf'value="{offers.pk}"[^>]*>', body)
    assert not re.search(rf'value="{offers.pk}"[^>]*checked', body)
    assert "Påmeldt" in body and "Ikke påmeldt" in body
    assert "Ja takk, FIT24 kan sende meg nyhetsbrev med tilbud og nyheter." in body
    assert "Samtykketekst, versjon 1" in body
    assert "fit24-sms-only" not in body
    assert "k24-news" not in body and "Someone else" not in body


def test_it_shows_the_current_notice_version(client, member, newsletter):
    ledger.purpose_notice_publish(purpose=newsletter, text="Ny tekst: nyhetsbrev hver måned.")

    body = client.get(f"/preferences/{token_for(member, newsletter)}").content.decode()

    assert "Ny tekst: nyhetsbrev hver måned." in body
    assert "Samtykketekst, versjon 2" in body


def test_unticking_withdraws_that_purpose_with_one_event(browser, member, newsletter, offers):
    path = f"/preferences/{token_for(member, newsletter)}"
    before = ConsentEvent.objects.count()

    response = browser.submit(path, {"action": "save"})  # nothing ticked

    body = response.content.decode()
    assert "Valgene dine er lagret" in body
    assert "Meldt av: «fit24-newsletter»." in body
    assert ConsentEvent.objects.count() == before + 1
    [event] = events(contact=member, action="withdraw")
    assert (event.source, event.channel, event.purpose_id) == ("preference_centre", "email", newsletter.pk)
    assert ConsentEvidence.objects.get(event=event).user_agent == BROWSER_UA
    assert not allowed(member, newsletter)
    assert allowed(member, newsletter, channel="sms")
    assert "Avmeldt" in body

    again = browser.submit(path, {"action": "save"})
    assert "Du gjorde ingen endringer." in again.content.decode()
    assert ConsentEvent.objects.count() == before + 1


def test_ticking_again_needs_double_opt_in_before_the_gate_allows_anything(
    browser, member, newsletter, fake_lifevision
):
    path = f"/preferences/{token_for(member, newsletter)}"
    browser.submit(path, {"action": "save"})  # withdraw
    before = ConsentEvent.objects.count()

    response = browser.submit(path, {"action": "save", "purpose": [str(newsletter.pk)]})

    body = response.content.decode()
    assert "Vi har sendt en bekreftelseslenke til k•••@example.no for: «fit24-newsletter»." in body
    assert "Venter på bekreftelse" in body
    assert ConsentEvent.objects.count() == before + 1
    grant = ConsentEvent.objects.latest("pk")
    assert (grant.action, grant.source, grant.pending_confirmation) == ("grant", "preference_centre", True)
    assert grant.notice is not None and grant.notice.version == 1
    assert not allowed(member, newsletter)  # not before confirmation

    # The same ticks again: still waiting, nothing new recorded, no second message.
    browser.submit(path, {"action": "save", "purpose": [str(newsletter.pk)]})
    assert ConsentEvent.objects.count() == before + 1
    [message] = MemberMessage.objects.all()
    assert (message.kind, message.channel, message.grant_ids) == ("confirm", "email", [grant.pk])

    # The confirmation goes to the address through LifeVision, as a service message.
    assert member_message_send(message_id=message.pk) == "sent"
    [sent] = fake_lifevision.messages
    assert sent["to"] == "kari@example.no"
    assert sent["subject"] == "Bekreft påmeldingen din hos FIT24"
    link = re.search(r"http://\S+/confirm/(\S+)", sent["text"])
    assert link, sent["text"]
    confirm = f"/confirm/{link.group(1)}"

    page = browser.get(confirm)
    assert page.status_code == 200
    assert "Bekreft påmeldingen" in page.content.decode()
    assert ConsentEvent.objects.count() == before + 1  # GET changes nothing
    assert not allowed(member, newsletter)

    done = browser.submit(confirm, {})
    assert "Takk – påmeldingen er bekreftet" in done.content.decode()
    assert ConsentEvent.objects.count() == before + 2
    confirmation = ConsentEvent.objects.latest("pk")
    assert (confirmation.action, confirmation.source, confirmation.confirms_id) == (
        "confirm",
        "preference_centre",
        grant.pk,
    )
    assert allowed(member, newsletter)
    assert "Påmeldt" in browser.get(path).content.decode()


def test_a_confirmation_link_used_twice_changes_nothing_the_second_time(browser, member, offers):
    path = f"/preferences/{token_for(member, offers)}"
    browser.submit(path, {"action": "save", "purpose": [str(offers.pk)]})
    confirm = confirm_path(MemberMessage.objects.get())
    browser.submit(confirm, {})
    assert allowed(member, offers)
    count = ConsentEvent.objects.count()

    second = browser.get(confirm)
    assert "Allerede bekreftet" in second.content.decode()
    replayed = browser.replay(confirm, {})  # a second POST, CSRF token and all
    assert replayed.status_code == 200
    assert "Allerede bekreftet" in replayed.content.decode()
    assert ConsentEvent.objects.count() == count


def test_an_expired_confirmation_link_changes_nothing(browser, member, offers, monkeypatch):
    browser.submit(
        f"/preferences/{token_for(member, offers)}", {"action": "save", "purpose": [str(offers.pk)]}
    )
    message = MemberMessage.objects.get()
    long_ago = timezone.now().timestamp() - 3 * 86400
    monkeypatch.setattr("django.core.signing.time.time", lambda: long_ago)
    confirm = confirm_path(message)
    monkeypatch.undo()
    count = ConsentEvent.objects.count()

    page = browser.get(confirm)
    assert page.status_code == 410
    assert "Lenken er utløpt" in page.content.decode()
    assert Client().post(confirm, {}).status_code == 410
    assert ConsentEvent.objects.count() == count
    assert reason(member, offers) == "awaiting_confirmation"


def test_a_confirmation_after_the_person_unsubscribed_again_is_refused(browser, member, offers):
    path = f"/preferences/{token_for(member, offers)}"
    browser.submit(path, {"action": "save", "purpose": [str(offers.pk)]})
    confirm = confirm_path(MemberMessage.objects.get())
    browser.submit(path, {"action": "save"})  # changed their mind: unticked again
    count = ConsentEvent.objects.count()

    page = browser.get(confirm)
    assert page.status_code == 410
    assert "Lenken gjelder ikke lenger" in page.content.decode()
    assert ConsentEvent.objects.count() == count
    assert not allowed(member, offers)


def test_bad_confirmation_tokens_get_a_friendly_page(client, member, newsletter):
    pending = ledger.consent_grant(
        contact=member,
        channel="email",
        purpose=newsletter,
        basis="consent",
        source="web_form",
        principal=ledger.Principal(actor="self"),
    )
    good = links.make_confirm_token(grant_ids=[pending.pk])
    front_desk_grant = events(contact=member, action="grant", pending_confirmation=False)[0]
    bad = [
        good[:-2],
        good[:10],
        token_for(member, newsletter),  # a member link is no confirmation link
        links.make_confirm_token(grant_ids=[front_desk_grant.pk]),  # not a pending grant
        links.make_confirm_token(grant_ids=[10**9]),
        signing.TimestampSigner(key="y" * 50, salt=links.CONFIRM_SALT).sign(str(pending.pk)),
    ]
    count = ConsentEvent.objects.count()

    for token in bad:
        response = client.get(f"/confirm/{token}")
        assert response.status_code == 404, token
        assert "Lenken virker ikke" in response.content.decode()
        assert Client().post(f"/confirm/{token}").status_code in (403, 404)

    assert ConsentEvent.objects.count() == count


def test_stopping_everything_on_the_channel_or_all_marketing(browser, member, newsletter, offers, staff):
    ledger.consent_grant(
        contact=member, channel="email", purpose=offers, basis="consent", source="front_desk", principal=staff
    )
    path = f"/preferences/{token_for(member, None)}"

    browser.submit(path, {"action": "channel"})
    [withdrawal] = events(contact=member, action="withdraw")
    assert (withdrawal.channel, withdrawal.purpose_id, withdrawal.source) == (
        "email",
        None,
        "preference_centre",
    )
    assert not allowed(member, newsletter) and not allowed(member, offers)
    assert allowed(member, newsletter, channel="sms")

    response = browser.submit(path, {"action": "all"})
    assert "FIT24 sender deg ikke lenger markedsføring" in response.content.decode()
    [objection] = events(contact=member, action="object")
    assert objection.source == "preference_centre"
    assert not allowed(member, newsletter, channel="sms")

    browser.submit(path, {"action": "all"})
    browser.submit(path, {"action": "channel"})
    assert len(events(contact=member, action__in=["object", "withdraw"])) == 2


def test_a_minor_cannot_subscribe_themself(browser, make_contact, offers):
    child = make_contact(birth_date=timezone.localdate().replace(year=timezone.localdate().year - 10))
    count = ConsentEvent.objects.count()

    response = browser.submit(
        f"/preferences/{token_for(child, None)}", {"action": "save", "purpose": [str(offers.pk)]}
    )

    assert "Du må være minst 13 år" in response.content.decode()
    assert ConsentEvent.objects.count() == count
    assert MemberMessage.objects.count() == 0


def test_a_form_post_without_csrf_changes_nothing(member, newsletter):
    client = Client(enforce_csrf_checks=True)
    count = ConsentEvent.objects.count()

    response = client.post(f"/preferences/{token_for(member, newsletter)}", {"action": "all"})

    assert response.status_code == 403
    assert "Skjemaet er utløpt" in response.content.decode()
    assert ConsentEvent.objects.count() == count


def test_the_sms_preference_centre_sends_its_confirmation_by_sms(
    browser, member, newsletter, fake_lifevision
):
    path = f"/preferences/{token_for(member, newsletter, channel='sms')}"
    browser.submit(path, {"action": "save"})
    browser.submit(path, {"action": "save", "purpose": [str(newsletter.pk)]})
    message = MemberMessage.objects.get()

    member_message_send(message_id=message.pk)

    [sent] = fake_lifevision.messages
    assert sent["channel"] == "sms" and sent["to"] == member.mobile
    assert sent["text"].startswith("FIT24: Bekreft at du vil få «fit24-newsletter» på SMS: http")
    assert not allowed(member, newsletter, channel="sms")


def test_a_confirmation_is_not_sent_once_the_address_has_changed(browser, member, offers, fake_lifevision):
    browser.submit(
        f"/preferences/{token_for(member, offers)}", {"action": "save", "purpose": [str(offers.pk)]}
    )
    message = MemberMessage.objects.get()
    member.email = "someone-else@example.no"
    member.save(update_fields=["email"])

    assert member_message_send(message_id=message.pk) == "cancelled"
    assert fake_lifevision.messages == []
    assert member_message_send(message_id=message.pk) == "nothing to send"


def test_the_preference_centre_speaks_english_when_asked(browser, member, newsletter):
    path = f"/preferences/{token_for(member, newsletter)}?lang=en"

    body = browser.get(path).content.decode()
    assert "Your preferences" in body and "Subscribed" in body

    saved = browser.submit(path, {"action": "save"}).content.decode()
    assert "Unsubscribed: “fit24-newsletter”." in saved
    assert MemberMessage.objects.count() == 0
