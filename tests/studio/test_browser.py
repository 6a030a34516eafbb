"""A marketer in real Chromium (Debian's /usr/bin/chromium, driven by Playwright): log in,
compose an SMS campaign from an empty form while the live preview counts the audience with the
gate, save it, send a test to a staff number, schedule it, send it and watch the report fill in
by itself. The numbers on the screens equal the API's preview and the deliveries in the
database. Screenshots at desktop width are kept in tests/artifacts/studio-*.png.

Like tests/web/test_browser.py this test does not skip: without Chromium it fails.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from comms.campaigns.models import Campaign, Delivery
from comms.studio.models import TestSend
from comms.suppression import services as ledger
from tests.campaigns.campaign_helpers import PERSON, grant
from tests.studio.conftest import PASSWORD
from tests.web.test_browser import ARTIFACTS, chromium  # noqa: F401 (the browser fixture)

pytestmark = pytest.mark.django_db(transaction=True)
OSLO = dt.timezone(dt.timedelta(hours=1))  # December: CET


@pytest.fixture
def desk(chromium: Any) -> Any:  # noqa: F811
    context = chromium.new_context(locale="nb-NO", viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"studio-{name}.png"), full_page=True)


def unlabelled_fields(page: Page) -> list[str]:
    """Form controls with neither a <label> nor an aria-label (hidden inputs aside)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
                .map(el => el.name || el.id)"""
        )
    )


def test_a_marketer_composes_tests_schedules_and_sends_a_campaign(
    desk: Page, live_server, settings, brand, make_purpose, make_contact, marketer, api,
    fake_lifevision, run_actors,
):
    settings.PUBLIC_BASE_URL = live_server.url
    settings.STUDIO_TEST_RECIPIENTS = ["+4799999999"]
    newsletter = make_purpose(key="fit24-newsletter", channels=("email", "sms"))
    newsletter.name = "FIT24 nyheter og tilbud"
    newsletter.save(update_fields=["name"])
    make_purpose(key="fit24-email-only", channels=("email",))
    members = [make_contact(first_name=f"Medlem{i}") for i in range(6)]
    for contact in members[:5]:
        grant(contact, newsletter, "sms")
    ledger.consent_withdraw(
        contact=members[3], channel="sms", purpose=newsletter, source="unsubscribe_link", principal=PERSON
    )
    ledger.objection_record(contact=members[4], source="preference_centre", principal=PERSON)
    guest = make_contact(kind="guest", first_name="Gjest")
    grant(guest, newsletter, "sms")

    # 1. Log in.
    desk.goto(f"{live_server.url}/studio/")
    expect(desk).to_have_title(re.compile("Logg inn"))
    desk.get_by_label("Brukernavn").fill(marketer.username)
    desk.get_by_label("Passord").fill(PASSWORD)
    shot(desk, "1-login")
    desk.get_by_role("button", name="Logg inn").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("Kampanjer")

    # 2. A new SMS campaign of FIT24, from an empty form.
    desk.get_by_role("link", name="Ny kampanje").first.click()
    desk.get_by_label("Merkevare").select_option("fit24")
    desk.get_by_label("SMS").check()
    desk.get_by_role("button", name="Neste").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("Ny kampanje: FIT24, SMS")
    purposes = desk.get_by_label("Formål").locator("option").all_inner_texts()
    assert "FIT24 nyheter og tilbud" in purposes and "fit24-email-only" not in purposes
    assert unlabelled_fields(desk) == []

    desk.get_by_label("Kampanjenavn").fill("Vintertilbud")
    desk.get_by_label("Formål").select_option("fit24-newsletter")
    # The live preview (htmx) counts the whole brand first: members and the guest.
    expect(desk.locator("#audience-size")).to_have_text("7")
    desk.get_by_label("Medlemmer").check()
    expect(desk.locator("#audience-size")).to_have_text("6")
    expect(desk.locator("#would-send")).to_have_text("3")
    expect(desk.locator("#would-deny")).to_have_text("3")
    denials = desk.locator("#denials tbody tr")
    expect(denials).to_have_count(3)
    expect(desk.locator("#denials")).to_contain_text("trakk tilbake samtykket")
    expect(desk.locator("#denials")).to_contain_text("reservert mot markedsføring")
    expect(desk.locator("#denials")).to_contain_text("har ikke samtykket")
    shown = {
        row.get_attribute("data-reason"): int(row.locator("td.num").inner_text())
        for row in denials.all()
    }

    # Keyboard: from the text field, Tab reaches the segment limit and then the save button.
    desk.get_by_label("SMS-tekst").focus()
    desk.keyboard.press("Tab")
    expect(desk.get_by_label("Lengste SMS, i segmenter")).to_be_focused()
    desk.keyboard.press("Tab")
    expect(desk.get_by_role("button", name="Lagre som utkast")).to_be_focused()
    desk.get_by_label("SMS-tekst").fill("Hei {first_name}! Vinterpris på årskort hos {brand} denne uka.")
    expect(desk.locator("#sms-preview")).to_contain_text("Hei Kari! Vinterpris på årskort hos FIT24 denne uka.")
    expect(desk.locator("#opt-out-line")).to_have_text(re.compile(r"^Avmeld: http://.+/s/\w+$"))
    expect(desk.locator("#sms-length")).to_have_text(re.compile(r"^\d+ tegn, 1 segment\(er\) \(GSM\)$"))
    shot(desk, "2-composer")
    desk.get_by_role("button", name="Lagre som utkast").click()
    expect(desk.locator(".msg.success")).to_have_text("Kampanjen er lagret som utkast.")
    campaign = Campaign.objects.get(name="Vintertilbud")
    assert campaign.audience == {"kinds": ["member"]} and campaign.status == "draft"

    # The counts the composer showed are the API's preview of the saved campaign.
    api_preview = api("marketer").post(f"/campaigns/{campaign.pk}/preview").json()
    assert (api_preview["audience"], api_preview["would_send"]) == (6, 3)
    assert api_preview["would_deny"] == shown

    # 3. A test send to a staff number: one message at the fake provider, no delivery.
    desk.get_by_label("Send en test til").fill("+47 99 99 99 99")
    desk.get_by_role("button", name="Send test").click()
    expect(desk.locator(".msg.success")).to_have_text("Testen er sendt til 1 adresse(r).")
    expect(desk.locator("#test-sends")).to_contain_text("+4799999999")
    assert [m["to"] for m in fake_lifevision.messages] == ["+4799999999"]
    assert fake_lifevision.messages[0]["text"].startswith("[TEST] Hei Kari!")
    assert TestSend.objects.filter(campaign=campaign, status="sent").count() == 1
    assert not Delivery.objects.filter(campaign=campaign).exists()

    # 4. Schedule it for tomorrow at 10:00 Norwegian time.
    tomorrow = (timezone.now().astimezone(OSLO) + dt.timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    desk.get_by_label("Sendes (norsk tid)").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    desk.get_by_role("button", name="Planlegg").click()
    expect(desk.locator("#status")).to_have_text("Planlagt")
    expect(desk.locator("#send-at")).to_have_text(tomorrow.strftime("%d.%m.%Y %H:%M"))
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.send_at == tomorrow
    shot(desk, "3-scheduled")

    # 5. Send it now; the report fills in by itself (htmx polling) while the worker sends.
    desk.get_by_role("button", name="Send nå").click()
    expect(desk.locator(".msg.success")).to_have_text("Kampanjen sendes.")
    run_actors()
    expect(desk.locator("#r-sent")).to_have_text("3", timeout=20_000)
    expect(desk.locator("#r-queued")).to_have_text("0")
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    in_db = Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    assert in_db == {"sent": 3, "denied": 3}
    expect(desk.locator("#r-total")).to_have_text("6")
    expect(desk.locator("#r-denied")).to_have_text(str(in_db["denied"]))
    expect(desk.locator("#r-denied-reasons")).to_contain_text("trakk tilbake samtykket")
    received = Counter(m["to"] for m in fake_lifevision.messages)
    assert sum(received.values()) == 4 and received["+4799999999"] == 1  # 3 members + the test
    desk.reload()
    shot(desk, "4-report")

    # 6. The dashboard lists it with the same numbers.
    desk.get_by_role("link", name="Kampanjer").first.click()
    row = desk.locator(f'tr[data-campaign="{campaign.pk}"]')
    expect(row).to_contain_text("Sendt")
    assert row.locator("td.num").all_inner_texts() == ["3", "0", "0", "3", "0"]
    expect(desk.locator("svg.chart").first).to_be_visible()
    shot(desk, "5-dashboard")


def test_the_email_composer_shows_the_mail_as_sent_and_warns_without_a_subject(
    desk: Page, live_server, settings, brand, make_purpose, make_contact, marketer
):
    settings.PUBLIC_BASE_URL = live_server.url
    newsletter = make_purpose(key="fit24-newsletter", channels=("email",))
    grant(make_contact(first_name="Ola"), newsletter, "email")
    desk.goto(f"{live_server.url}/studio/login/")
    desk.get_by_label("Brukernavn").fill(marketer.username)
    desk.get_by_label("Passord").fill(PASSWORD)
    desk.get_by_role("button", name="Logg inn").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("Kampanjer")  # the login lands on the studio
    desk.goto(f"{live_server.url}/studio/campaigns/new/?brand=fit24&channel=email")
    assert unlabelled_fields(desk) == []
    desk.get_by_label("Kampanjenavn").fill("Nyhetsbrev desember")
    desk.get_by_label("Formål").select_option("fit24-newsletter")
    desk.get_by_label("E-post (HTML)").fill("<h1>Hei {first_name}!</h1><p>Nye timer på {centre}.</p>")
    desk.get_by_label("Ren tekst-del").fill("Hei {first_name}! Nye timer på {centre}.")
    expect(desk.locator(".warning")).to_have_text(["⚠ E-posten mangler emne."])
    expect(desk.locator("#would-send")).to_have_text("1")
    desk.get_by_label("Emne").fill("Nytt fra FIT24, {first_name}")
    expect(desk.locator("#mail-subject")).to_have_text("Nytt fra FIT24, Kari")
    expect(desk.locator(".warning")).to_have_count(0)
    expect(desk.locator("#mail-headers")).to_contain_text("List-Unsubscribe=One-Click")
    expect(desk.locator("#mail-text")).to_contain_text("Hei Kari! Nye timer på Oslo.")
    expect(desk.locator("#mail-text")).to_contain_text(f"Meld deg av: {live_server.url}/u/")
    # The HTML part renders in a sandboxed frame, footer included.
    mail = desk.frame_locator("#mail-html")
    expect(mail.get_by_role("heading", level=1)).to_have_text("Hei Kari!")
    expect(mail.get_by_role("link", name="Meld deg av")).to_be_visible()
    # A full-page screenshot leaves the sandboxed (cross-origin) frame blank: grow the viewport.
    desk.set_viewport_size({"width": 1366, "height": 1900})
    desk.wait_for_timeout(300)
    desk.screenshot(path=str(ARTIFACTS / "studio-6-email-composer.png"))
    desk.set_viewport_size({"width": 1366, "height": 900})

    desk.get_by_role("link", name="Oppfølging").click()
    expect(desk.get_by_role("heading", level=1)).to_have_text("Oppfølgingsregler")
    shot(desk, "7-followups")
