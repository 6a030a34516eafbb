"""A member in real Chromium (Debian's /usr/bin/chromium, driven by Playwright): from the
unsubscribe link in an email, through the confirmation page, to the preference centre and back
again by double opt-in, in Norwegian. Screenshots of each step are kept in tests/artifacts/.

This test does not skip: if Chromium is missing or cannot start, it fails (bin/test installs it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from comms.links import unsubscribe_url
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, ConsentEvidence
from comms.web.messages import member_message_compose
from comms.web.models import MemberMessage
from tests.web.conftest import token_for

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop alive in this thread; the ORM calls the test makes
    # between page steps are ordinary blocking calls, so Django's async guard must stand aside.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(locale="nb-NO", viewport={"width": 900, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def allowed(contact: Any, purpose: Any) -> bool:
    return gate.check(contact=contact, channel="email", purpose=purpose).allowed


def test_a_member_unsubscribes_from_an_email_and_comes_back_by_double_opt_in(
    page, live_server, settings, make_contact, make_purpose, staff
):
    settings.PUBLIC_BASE_URL = live_server.url
    newsletter = make_purpose(
        key="fit24-newsletter",
        channels=("email", "sms"),
        notice_text="Ja takk, FIT24 kan sende meg nyhetsbrev med tilbud og nyheter på e-post.",
    )
    newsletter.name = "FIT24 nyhetsbrev"
    newsletter.save(update_fields=["name"])
    offers = make_purpose(key="fit24-offers", channels=("email",), notice_text="Ja takk til medlemstilbud.")
    offers.name = "Medlemstilbud"
    offers.save(update_fields=["name"])
    kari = make_contact(email="kari.nordmann@example.no", first_name="Kari")
    for purpose in (newsletter, offers):
        ledger.consent_grant(
            contact=kari,
            channel="email",
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=staff,
        )
    events_before = ConsentEvent.objects.count()

    # 1. The link from the email's footer: a page, and nothing changed.
    page.goto(unsubscribe_url(token_for(kari, newsletter)))
    expect(page).to_have_title(re.compile("Meld deg av – FIT24"))
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("heading", level=1)).to_have_text("Meld deg av")
    expect(page.locator(".lead")).to_have_text(
        "FIT24 sender deg «FIT24 nyhetsbrev» på e-post til k•••@example.no."
    )
    expect(page.get_by_label("Bare «FIT24 nyhetsbrev»")).to_be_checked()
    expect(page.get_by_label("All e-post fra FIT24")).not_to_be_checked()
    expect(page.get_by_label("All markedsføring fra FIT24")).not_to_be_checked()
    shot(page, "1-unsubscribe")
    assert ConsentEvent.objects.count() == events_before

    # 2. Unsubscribe from this purpose: the confirmation says what was done.
    page.get_by_role("button", name="Meld meg av").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Du er meldt av")
    expect(page.get_by_role("status")).to_have_text(
        "Du får ikke lenger «FIT24 nyhetsbrev» fra FIT24 på e-post."
    )
    shot(page, "2-unsubscribed")
    [withdrawal] = ConsentEvent.objects.filter(pk__gt=0, action="withdraw")
    assert (withdrawal.source, withdrawal.channel, withdrawal.purpose_id) == (
        "unsubscribe_link",
        "email",
        newsletter.pk,
    )
    assert "Chrome" in ConsentEvidence.objects.get(event=withdrawal).user_agent
    assert not allowed(kari, newsletter) and allowed(kari, offers)

    # 3. On to the preference centre: the newsletter is off, the offers still on.
    page.get_by_role("link", name="Gå til innstillingene dine").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dine innstillinger")
    expect(page.get_by_label("FIT24 nyhetsbrev")).not_to_be_checked()
    expect(page.get_by_label("Medlemstilbud")).to_be_checked()
    expect(page.locator(f"#status-{newsletter.pk}")).to_have_text("Avmeldt")
    expect(page.locator(f"#status-{offers.pk}")).to_have_text("Påmeldt")
    page.get_by_text("Se hva du har sagt ja til").first.click()
    expect(page.get_by_text("Ja takk, FIT24 kan sende meg nyhetsbrev")).to_be_visible()
    shot(page, "3-preferences")

    # 4. Changed her mind: ticking it again asks for confirmation first.
    page.get_by_label("FIT24 nyhetsbrev").check()
    page.get_by_role("button", name="Lagre valgene").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Vi har sendt en bekreftelseslenke til k•••@example.no for: «FIT24 nyhetsbrev»."
    )
    expect(page.locator(f"#status-{newsletter.pk}")).to_have_text("Venter på bekreftelse")
    shot(page, "4-awaiting-confirmation")
    assert not allowed(kari, newsletter)
    [message] = MemberMessage.objects.all()
    email = member_message_compose(message)
    assert email is not None and email.to == "kari.nordmann@example.no"
    confirm_link = re.search(r"(http://\S+/confirm/\S+)", email.text)
    assert confirm_link, email.text

    # 5. The link from the confirmation email, then the button.
    page.goto(confirm_link.group(1))
    expect(page.get_by_role("heading", level=1)).to_have_text("Bekreft påmeldingen")
    assert not allowed(kari, newsletter)
    shot(page, "5-confirm")
    page.get_by_role("button", name="Ja, bekreft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Takk – påmeldingen er bekreftet")
    shot(page, "6-confirmed")
    assert allowed(kari, newsletter)
    confirmation = ConsentEvent.objects.get(action="confirm")
    assert (confirmation.source, confirmation.purpose_id) == ("preference_centre", newsletter.pk)

    # 6. And back in the preference centre, subscribed again; the language switch works.
    page.get_by_role("link", name="Gå til innstillingene dine").click()
    expect(page.get_by_label("FIT24 nyhetsbrev")).to_be_checked()
    expect(page.locator(f"#status-{newsletter.pk}")).to_have_text("Påmeldt")
    shot(page, "7-preferences-again")
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your preferences")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    # Exactly: the withdrawal, the pending grant and its confirmation.
    assert ConsentEvent.objects.count() == events_before + 3
    assert list(ConsentEvent.objects.filter(contact=kari).values_list("action", "source"))[-3:] == [
        ("withdraw", "unsubscribe_link"),
        ("grant", "preference_centre"),
        ("confirm", "preference_centre"),
    ]


def test_a_broken_link_offers_a_fresh_one_without_revealing_the_address(
    chromium, live_server, settings, make_contact, newsletter
):
    """On a phone: a link cut short by a mail client gives a friendly page with the lost-link
    form; asking for a fresh link answers the same whether or not the address is known."""
    settings.PUBLIC_BASE_URL = live_server.url
    kari = make_contact(email="kari.nordmann@example.no")
    token = token_for(kari, newsletter)
    context = chromium.new_context(locale="nb-NO", viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        response = page.goto(unsubscribe_url(token[:-9]))
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Lenken virker ikke")
        expect(page.get_by_label("E-post eller mobilnummer")).to_be_visible()
        shot(page, "8-broken-link-mobile")

        page.get_by_label("E-post eller mobilnummer").fill("Kari.Nordmann@example.no")
        page.get_by_role("button", name="Send meg en lenke").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sjekk innboksen din")
        known = page.locator("main").inner_text().replace("kari.nordmann@", "X@")
        shot(page, "9-lost-link-sent-mobile")

        page.goto(f"{live_server.url}/u/lost")
        page.get_by_label("E-post eller mobilnummer").fill("ukjent@example.no")
        page.get_by_role("button", name="Send meg en lenke").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sjekk innboksen din")
        assert page.locator("main").inner_text().replace("ukjent@", "X@") == known
    finally:
        context.close()

    [message] = MemberMessage.objects.all()
    assert (message.kind, message.contact_id) == ("link", kari.pk)
    assert ConsentEvent.objects.filter(contact=kari).count() == 0
