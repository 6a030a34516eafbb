from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from comms.contacts.models import Contact
from comms.links import make_token
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent, Purpose
from tests.campaigns.conftest import broker, fake_lifevision, run_actors  # noqa: F401  (shared fixtures)

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) MemberTest/1.0"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def newsletter(make_purpose: Callable[..., Purpose]) -> Purpose:
    return make_purpose(
        key="fit24-newsletter",
        channels=("email", "sms"),
        notice_text="Ja takk, FIT24 kan sende meg nyhetsbrev med tilbud og nyheter.",
    )


@pytest.fixture
def offers(make_purpose: Callable[..., Purpose]) -> Purpose:
    return make_purpose(key="fit24-offers", channels=("email",), notice_text="Ja takk til medlemstilbud.")


@pytest.fixture
def member(make_contact: Callable[..., Contact], newsletter: Purpose, staff: ledger.Principal) -> Contact:
    """A member who said yes to the newsletter by email and SMS at the front desk."""
    contact = make_contact(email="kari@example.no", first_name="Kari")
    for channel in ("email", "sms"):
        ledger.consent_grant(
            contact=contact,
            channel=channel,
            purpose=newsletter,
            basis="consent",
            source="front_desk",
            principal=staff,
        )
    return contact


def token_for(contact: Contact, purpose: Purpose | None, channel: str = "email") -> str:
    address = contact.address_for(channel)
    assert address
    return make_token(
        contact_id=contact.pk,
        purpose_id=purpose.pk if purpose else 0,
        channel=channel,
        address_key=address_key(channel, address),
    )


def events(**filters: Any) -> list[ConsentEvent]:
    return list(ConsentEvent.objects.filter(**filters).order_by("chain", "seq"))


_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """A test client that enforces CSRF like a real deployment and posts forms as a browser would:
    it reads the CSRF token from the page it was given."""

    def __init__(self) -> None:
        self.client = Client(enforce_csrf_checks=True, headers={"User-Agent": BROWSER_UA})

    def get(self, path: str) -> Any:
        return self.client.get(path)

    def submit(self, path: str, data: dict[str, Any]) -> Any:
        page = self.client.get(path)
        match = _CSRF.search(page.content.decode())
        assert match, f"no form with a CSRF token on {path}"
        return self.client.post(path, {**data, "csrfmiddlewaretoken": match.group(1)})

    def replay(self, path: str, data: dict[str, Any]) -> Any:
        """POST with a valid CSRF token (the cookie's secret) but without loading the page."""
        secret = self.client.cookies["csrftoken"].value
        return self.client.post(path, {**data, "csrfmiddlewaretoken": secret})


@pytest.fixture
def browser() -> Browser:
    return Browser()
