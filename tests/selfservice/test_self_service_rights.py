"""Self-service rights from the preference centre: a short-lived link sent to the address
proves the person holds it; only then can they download their export or ask for erasure.
Erasures that need review go to the DPO queue, due in one month (art. 12(3))."""

from __future__ import annotations

import datetime as dt
import json
import re
import time

from comms.links import make_rights_token
from comms.rights.models import AuditEntry, RightsRequest
from comms.rights.services import one_month_after
from comms.suppression.keys import address_key
from comms.suppression.models import Suppression
from comms.web.messages import member_message_send
from comms.web.models import MemberMessage
from tests.web.conftest import token_for


def ask_for_link(browser, contact, fake_lifevision) -> str:
    """Press 'send me a link' in the preference centre; returns the path of the link received."""
    preferences = f"/preferences/{token_for(contact, None)}"
    page = browser.get(preferences).content.decode()
    assert "Dine personopplysninger" in page
    response = browser.replay(f"{preferences}/rights", {})
    assert response.status_code == 200
    assert "Vi har sendt en lenke til" in response.content.decode()
    [message] = MemberMessage.objects.filter(kind="rights")
    assert member_message_send(message_id=message.pk) == "sent"
    sent = fake_lifevision.messages[-1]
    assert sent["to"] == contact.email
    link = re.search(r"http://\S+(/rights/\S+)", sent["text"])
    assert link, sent["text"]
    return link.group(1)


def test_an_export_is_downloaded_only_after_proving_the_address(browser, member, fake_lifevision):
    # The preferences link alone is not proof enough, nor a forged or foreign link.
    assert browser.get(f"/rights/{token_for(member, None)}").status_code == 404
    assert browser.get("/rights/forged:token").status_code == 404
    assert AuditEntry.objects.filter(action="export").count() == 0

    path = ask_for_link(browser, member, fake_lifevision)
    page = browser.get(path)
    assert page.status_code == 200 and "Last ned dataene mine" in page.content.decode()
    assert AuditEntry.objects.count() == 0  # GET changes nothing

    download = browser.submit(path, {"action": "export"})

    assert download.status_code == 200
    assert download["Content-Disposition"].startswith('attachment; filename="fit24-data-')
    document = json.loads(download.content)
    assert document["contact"]["email"] == "kari@example.no"
    assert len(document["consent_events"]) == 2
    [entry] = AuditEntry.objects.filter(action="export")
    assert (entry.actor, entry.contact_id) == ("self:preference-centre", member.pk)


def test_an_expired_rights_link_or_one_for_a_changed_address_reveals_nothing(browser, member, settings):
    token = make_rights_token(contact_id=member.pk, channel="email", address_key="0" * 64)
    assert browser.get(f"/rights/{token}").status_code == 404  # not the contact's address now
    settings.RIGHTS_LINK_MAX_AGE = 1
    good = make_rights_token(
        contact_id=member.pk, channel="email", address_key=address_key("email", member.email)
    )
    time.sleep(2.1)
    expired = browser.get(f"/rights/{good}")
    assert expired.status_code == 410
    assert "k•••@example.no" not in expired.content.decode()


def test_a_members_erasure_request_goes_to_the_dpo_queue_due_in_one_month(
    browser, member, fake_lifevision, admin_client
):
    path = ask_for_link(browser, member, fake_lifevision)

    response = browser.submit(path, {"action": "erase"})

    body = response.content.decode()
    [request] = RightsRequest.objects.all()
    assert (request.contact_id, request.kind, request.status) == (member.pk, "erasure", "open")
    assert request.due_at == one_month_after(request.received_at)
    assert f"innen {request.due_at.date().isoformat()}" in body or "Personvernombudet" in body
    member.refresh_from_db()
    assert member.erased_at is None  # not yet: the DPO reviews it
    assert AuditEntry.objects.filter(action="erase_request", contact_id=member.pk).exists()

    browser.submit(path, {"action": "erase"})  # asking again: the open request, no second one
    assert RightsRequest.objects.count() == 1

    queue = admin_client.get("/admin/rights/rightsrequest/")
    assert queue.status_code == 200 and "Open" in queue.content.decode()
    admin_client.post(
        "/admin/rights/rightsrequest/", {"action": "erase_now", "_selected_action": [request.pk]}
    )
    request.refresh_from_db()
    member.refresh_from_db()
    assert request.status == "done" and request.closed_by.startswith("admin:")
    assert member.erased_at is not None
    assert Suppression.objects.filter(source_event__contact=member, reason="erased").exists()


def test_a_leads_erasure_is_done_at_once_keeping_the_suppression(
    browser, make_contact, newsletter, fake_lifevision
):
    lead = make_contact(kind="lead", email="lead@example.no")
    path = ask_for_link(browser, lead, fake_lifevision)

    response = browser.submit(path, {"action": "erase"})

    assert "Dataene dine er slettet" in response.content.decode()
    lead.refresh_from_db()
    assert lead.erased_at is not None and lead.email is None
    assert RightsRequest.objects.count() == 0
    assert Suppression.objects.filter(source_event__contact=lead, reason="erased").exists()
    assert browser.get(path).status_code == 404  # the link is dead with the address


def test_one_month_is_a_calendar_month():
    utc = dt.UTC
    assert one_month_after(dt.datetime(2026, 1, 31, 12, tzinfo=utc)) == dt.datetime(
        2026, 2, 28, 12, tzinfo=utc
    )
    assert one_month_after(dt.datetime(2026, 12, 15, tzinfo=utc)) == dt.datetime(2027, 1, 15, tzinfo=utc)
    assert one_month_after(dt.datetime(2028, 1, 30, tzinfo=utc)) == dt.datetime(2028, 2, 29, tzinfo=utc)
