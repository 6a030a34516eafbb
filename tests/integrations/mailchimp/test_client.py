"""The wrapper turns every failure shape of the official client into one MailchimpError."""

from __future__ import annotations

import pytest

from integrations.errors import IntegrationError
from integrations.mailchimp.client import COMPLIANCE_STATE, MailchimpClient, MailchimpError
from integrations.mailchimp.fake import FakeMailchimp
from tests.integrations.mailchimp.conftest import LIST_ID


def client_for(fake: FakeMailchimp) -> MailchimpClient:
    return MailchimpClient(fake.api_key, "us21", fake.base_url)


def test_it_raises_on_an_empty_bodied_503_instead_of_returning_it(fake_mailchimp: FakeMailchimp) -> None:
    fake_mailchimp.fail_next(1, 503)
    with pytest.raises(IntegrationError) as caught:
        client_for(fake_mailchimp).ping()
    assert caught.value.permanent is False


def test_it_treats_429_as_transient_with_a_pause(fake_mailchimp: FakeMailchimp) -> None:
    fake_mailchimp.fail_next(1, 429, empty=False)
    with pytest.raises(MailchimpError) as caught:
        client_for(fake_mailchimp).ping()
    assert caught.value.permanent is False and caught.value.retry_after


def test_it_reads_the_problem_title_from_the_raw_error_text(fake_mailchimp: FakeMailchimp) -> None:
    fake_mailchimp.put_member(LIST_ID, "gone@example.no", "unsubscribed")
    with pytest.raises(MailchimpError) as caught:
        client_for(fake_mailchimp).member_set(
            LIST_ID, "gone@example.no", status="subscribed", status_if_new="subscribed"
        )
    assert caught.value.permanent is True
    assert caught.value.status == 400 and caught.value.title == COMPLIANCE_STATE


def test_it_allows_pending_for_an_unsubscribed_member(fake_mailchimp: FakeMailchimp) -> None:
    fake_mailchimp.put_member(LIST_ID, "back@example.no", "unsubscribed")
    client_for(fake_mailchimp).member_set(
        LIST_ID, "back@example.no", status="pending", status_if_new="pending"
    )
    assert fake_mailchimp.status_of(LIST_ID, "back@example.no") == "pending"


def test_it_wraps_network_errors() -> None:
    client = MailchimpClient("key-us21", "us21", "http://127.0.0.1:9", timeout=2)
    with pytest.raises(MailchimpError) as caught:
        client.ping()
    assert caught.value.permanent is False and caught.value.status is None


def test_a_wrong_key_is_permanent(fake_mailchimp: FakeMailchimp) -> None:
    with pytest.raises(MailchimpError) as caught:
        MailchimpClient("wrong-us21", "us21", fake_mailchimp.base_url).ping()
    assert caught.value.permanent is True and caught.value.status == 401
