from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.mailchimp import client as mailchimp_client
from integrations.mailchimp.fake import FakeMailchimp

LIST_ID = "fakelist01"
SECRET = "hook-secret-0123456789"


@pytest.fixture
def fake_mailchimp(settings: Any) -> Iterator[FakeMailchimp]:
    fake = FakeMailchimp(lists=(LIST_ID,)).start()
    settings.MAILCHIMP_API_KEY = fake.api_key
    settings.MAILCHIMP_SERVER = "us21"
    settings.MAILCHIMP_BASE_URL = fake.base_url
    settings.MAILCHIMP_AUDIENCES = {"fit24": LIST_ID}
    settings.MAILCHIMP_WEBHOOK_SECRET = SECRET
    mailchimp_client._limiter = None  # built again from these settings
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def broker() -> Any:
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    stub = dramatiq.get_broker()
    assert isinstance(stub, StubBroker)
    stub.flush_all()
    return stub
