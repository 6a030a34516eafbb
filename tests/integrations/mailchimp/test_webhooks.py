"""Mailchimp -> ledger: each webhook type lands once, even when Mailchimp delivers it twice."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

from comms.campaigns.models import CallbackReceipt
from comms.contacts.models import Contact
from comms.suppression.models import ConsentEvent, Suppression
from integrations.mailchimp.fake import FakeMailchimp
from integrations.mailchimp.models import AudienceUnsubscribe
from integrations.mailchimp.webhooks import webhook_process
from tests.integrations.mailchimp.conftest import LIST_ID, SECRET

pytestmark = pytest.mark.django_db
URL = f"/hooks/mailchimp/{SECRET}"


def post(form: dict[str, str], url: str = URL) -> Any:
    return Client().post(url, urlencode(form), content_type="application/x-www-form-urlencoded")


def deliver_twice(form: dict[str, str], capture: Any) -> list[str]:
    answers = []
    for _ in range(2):
        with capture(execute=True):
            response = post(form)
        assert response.status_code == 200, response.content
        answers.append(response.json()["status"])
    for receipt in CallbackReceipt.objects.filter(provider="mailchimp", processed_at__isnull=True):
        webhook_process(receipt_id=receipt.pk)
    return answers


def unsubscribe(email: str, **data: str) -> dict[str, str]:
    form = {
        "type": "unsubscribe",
        "fired_at": "2026-03-26 21:40:57",
        "data[action]": "unsub",
        "data[reason]": "manual",
        "data[id]": "8a25ff1d98",
        "data[list_id]": LIST_ID,
        "data[email]": email,
        "data[email_type]": "html",
        "data[merges][EMAIL]": email,
        "data[merges][FNAME]": "",
    }
    form.update({f"data[{k}]": v for k, v in data.items()})
    return form


def events(contact: Contact | None = None) -> list[tuple[str, str]]:
    found = ConsentEvent.objects.filter(source="mailchimp_webhook")
    if contact is not None:
        found = found.filter(contact=contact)
    return [(e.action, e.reason) for e in found.order_by("id")]


@pytest.mark.parametrize("action", ["unsub", "delete"])
def test_an_unsubscribe_withdraws_email_once(
    fake_mailchimp: FakeMailchimp,
    contact: Contact,
    broker: Any,
    django_capture_on_commit_callbacks: Any,
    action: str,
) -> None:
    answers = deliver_twice(
        unsubscribe(contact.email or "", action=action), django_capture_on_commit_callbacks
    )
    assert answers == ["accepted", "duplicate"]
    assert events() == [("withdraw", "")]
    assert Suppression.objects.filter(reason="withdrawn", channel="email", brand=contact.brand).count() == 1
    assert not AudienceUnsubscribe.objects.exists()  # Mailchimp already has it: no echo


def test_a_spam_complaint_suppresses_the_address_for_every_brand(
    fake_mailchimp: FakeMailchimp, contact: Contact, broker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    deliver_twice(unsubscribe(contact.email or "", reason="abuse"), django_capture_on_commit_callbacks)
    assert events() == [("withdraw", ""), ("suppress", "complaint")]
    assert Suppression.objects.filter(reason="complaint", brand__isnull=True, channel="email").count() == 1


def test_a_cleaned_member_is_a_hard_bounce(
    fake_mailchimp: FakeMailchimp, contact: Contact, broker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    form = {
        "type": "cleaned",
        "fired_at": "2026-03-26 22:01:00",
        "data[list_id]": LIST_ID,
        "data[campaign_id]": "4fjk2ma9xd",
        "data[reason]": "hard",
        "data[email]": contact.email or "",
    }
    deliver_twice(form, django_capture_on_commit_callbacks)
    assert events() == [("suppress", "hard_bounce")]


def test_an_unknown_address_is_suppressed_for_the_brand(
    fake_mailchimp: FakeMailchimp, brand: Any, broker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    deliver_twice(unsubscribe("stranger@example.no"), django_capture_on_commit_callbacks)
    assert events() == [("suppress", "withdrawn")]
    assert Suppression.objects.filter(reason="withdrawn", brand=brand).count() == 1


def test_upemail_moves_the_contact_to_the_new_address_once_as_a_rectification(
    fake_mailchimp: FakeMailchimp, contact: Contact, broker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    old = contact.email or ""
    form = {
        "type": "upemail",
        "fired_at": "2026-03-26 22:15:09",
        "data[list_id]": LIST_ID,
        "data[new_id]": "51da8c3259",
        "data[new_email]": "New.Address@Example.no",
        "data[old_email]": old,
    }
    assert deliver_twice(form, django_capture_on_commit_callbacks) == ["accepted", "duplicate"]
    contact.refresh_from_db()
    assert contact.email == "new.address@example.no"
    assert events(contact) == [("rectify", "email")]
    assert CallbackReceipt.objects.get(provider="mailchimp").outcome == "email rectified (1 contact(s))"
    assert not Suppression.objects.exists()  # a rectification lifts and adds nothing


def test_profile_updates_the_name_once_and_changes_no_consent(
    fake_mailchimp: FakeMailchimp, contact: Contact, broker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    form = {
        "type": "profile",
        "fired_at": "2026-03-26 21:31:21",
        "data[id]": "8a25ff1d98",
        "data[list_id]": LIST_ID,
        "data[email]": contact.email or "",
        "data[email_type]": "html",
        "data[merges][FNAME]": "Olava",
    }
    assert deliver_twice(form, django_capture_on_commit_callbacks) == ["accepted", "duplicate"]
    contact.refresh_from_db()
    assert contact.first_name == "Olava"
    assert events(contact) == [("rectify", "first_name")]


def test_upemail_for_an_unknown_address_changes_nothing(
    fake_mailchimp: FakeMailchimp, brand: Any, broker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    form = {
        "type": "upemail",
        "fired_at": "2026-03-26 22:15:09",
        "data[list_id]": LIST_ID,
        "data[new_id]": "51da8c3259",
        "data[new_email]": "new@example.no",
        "data[old_email]": "old@example.no",
    }
    deliver_twice(form, django_capture_on_commit_callbacks)
    assert events() == [] and not Contact.objects.filter(email="new@example.no").exists()


def test_a_wrong_secret_is_404_without_detail(fake_mailchimp: FakeMailchimp, db: Any) -> None:
    for response in (
        post(unsubscribe("a@example.no"), url="/hooks/mailchimp/wrong"),
        Client().get("/hooks/mailchimp/wrong"),
    ):
        assert response.status_code == 404 and response.content == b""
    assert not CallbackReceipt.objects.exists()


def test_it_answers_mailchimps_validation(fake_mailchimp: FakeMailchimp, db: Any) -> None:
    assert Client().get(URL).status_code == 200
    assert Client().post(URL).status_code == 200


def test_an_unknown_list_or_missing_email_is_refused(fake_mailchimp: FakeMailchimp, db: Any) -> None:
    assert post(unsubscribe("a@example.no", list_id="nope")).status_code == 400
    assert (
        post({"type": "unsubscribe", "fired_at": "2026-03-26 21:40:57", "data[list_id]": LIST_ID}).status_code
        == 400
    )
    assert post({"type": "campaign", "fired_at": "x"}).json()["status"] == "ignored"
    assert not CallbackReceipt.objects.exists()
