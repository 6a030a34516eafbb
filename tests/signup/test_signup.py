"""The public sign-up: a pending grant with the notice version shown and its evidence, effective
only once confirmed; bots and floods refused; the same answer for new and known addresses."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from comms.contacts.models import Contact
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, ConsentEvidence
from comms.web.messages import member_message_send
from comms.web.models import MemberMessage

PAGE = "/signup/fit24/fit24-newsletter"
UA = "Mozilla/5.0 SignupTest"
_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _no_waiting(settings):
    settings.SIGNUP_MIN_SECONDS = 0


def sign_up(client: Client, address: str, **extra: str):
    page = client.get(PAGE)
    assert page.status_code == 200
    match = _TOKEN.search(page.content.decode())
    assert match
    return client.post(PAGE, {"form_token": match.group(1), "address": address, "website": "", **extra})


def written() -> tuple[int, int, int]:
    return ConsentEvent.objects.count(), Contact.objects.count(), MemberMessage.objects.count()


def test_a_signup_is_not_effective_until_confirmed_and_then_records_the_notice_version(
    newsletter, fake_lifevision
):
    client = Client(headers={"User-Agent": UA})
    page = client.get(PAGE)
    assert "Ja takk, FIT24 kan sende meg nyhetsbrev" in page.content.decode()
    assert "Samtykketekst, versjon 1" in page.content.decode()

    response = sign_up(client, "Ola@Example.no", first_name="Ola")

    assert response.status_code == 200
    assert "Sjekk innboksen din" in response.content.decode()
    lead = Contact.objects.get(email="ola@example.no")
    assert (lead.kind, lead.first_name) == ("lead", "Ola")
    [grant] = ConsentEvent.objects.filter(contact=lead)
    assert (grant.action, grant.source, grant.pending_confirmation) == ("grant", "web_form", True)
    assert grant.notice is not None and grant.notice.version == 1
    evidence = ConsentEvidence.objects.get(event=grant)
    assert (evidence.ip, evidence.user_agent) == ("127.0.0.1", UA)
    decision = gate.check(contact=lead, channel="email", purpose=newsletter)
    assert (decision.allowed, decision.reason) == (False, "awaiting_confirmation")

    # Meanwhile a new notice is published: the grant keeps the version the person was shown.
    ledger.purpose_notice_publish(purpose=newsletter, text="A new text")

    [message] = MemberMessage.objects.all()
    assert member_message_send(message_id=message.pk) == "sent"
    [sent] = fake_lifevision.messages
    assert sent["to"] == "ola@example.no"
    link = re.search(r"http://\S+(/confirm/\S+)", sent["text"])
    assert link
    assert client.get(link.group(1)).status_code == 200
    assert not gate.check(contact=lead, channel="email", purpose=newsletter).allowed  # GET: nothing

    done = Client().post(link.group(1), {})
    assert "påmeldingen er bekreftet" in done.content.decode()
    decision = gate.check(contact=lead, channel="email", purpose=newsletter)
    assert (decision.allowed, decision.reason) == (True, "consent")
    assert decision.event_id is not None
    confirmation = ConsentEvent.objects.get(pk=decision.event_id)
    assert confirmation.confirms_id == grant.pk
    assert confirmation.notice is not None and confirmation.notice.version == 1

    # The link again: nothing new.
    before = ConsentEvent.objects.count()
    Client().post(link.group(1), {})
    assert ConsentEvent.objects.count() == before


def test_the_answer_is_the_same_for_a_new_a_known_and_a_subscribed_address(member, newsletter):
    client = Client()
    new = sign_up(client, "someone.new@example.no")
    subscribed = sign_up(client, "kari@example.no")  # the member, already subscribed
    assert new.status_code == subscribed.status_code == 200
    assert new.content == subscribed.content
    # Nothing recorded for the subscribed member, no message to her.
    assert not ConsentEvent.objects.filter(contact=member, source="web_form").exists()
    assert MemberMessage.objects.filter(contact=member).count() == 0

    # A known address that withdrew: a new pending grant, the same answer again.
    ledger.consent_withdraw(
        contact=member,
        channel="email",
        purpose=newsletter,
        source="unsubscribe_link",
        principal=ledger.Principal(actor="self"),
    )
    known = sign_up(client, "kari@example.no")
    assert known.content == new.content
    grant = ConsentEvent.objects.filter(contact=member).latest("pk")
    assert (grant.source, grant.pending_confirmation) == ("web_form", True)
    assert Contact.objects.filter(email="kari@example.no").count() == 1  # no duplicate contact


def test_a_bot_filling_the_honeypot_gets_the_same_answer_and_nothing_is_written(newsletter):
    client = Client()
    human = sign_up(client, "human@example.no")
    before = written()

    bot = sign_up(client, "bot@example.no", website="http://spam.example")

    assert bot.status_code == 200 and bot.content == human.content
    assert written() == before


def test_a_form_posted_too_fast_or_forged_is_refused_and_nothing_is_written(newsletter, settings):
    settings.SIGNUP_MIN_SECONDS = 60
    client = Client()
    before = written()
    fast = sign_up(client, "quick@example.no")
    forged = client.post(PAGE, {"form_token": "x:y:z", "address": "quick@example.no"})
    missing = client.post(PAGE, {"address": "quick@example.no"})
    assert fast.status_code == forged.status_code == missing.status_code == 400
    assert "Skjemaet er utløpt" in fast.content.decode()
    assert written() == before


def test_a_flood_from_one_client_is_limited_and_one_address_gets_few_messages(newsletter, settings):
    settings.SIGNUP_LIMIT_PER_IP = (3, 3600)
    settings.SIGNUP_LIMIT_PER_ADDRESS = (1, 3600)
    client = Client()
    first = sign_up(client, "target@example.no")
    second = sign_up(client, "target@example.no")  # the address's own limit: same answer, no message
    assert first.content == second.content
    assert MemberMessage.objects.count() == 1
    sign_up(client, "other@example.no")
    before = written()
    flooded = sign_up(client, "fourth@example.no")
    assert flooded.status_code == 429
    assert "For mange påmeldinger" in flooded.content.decode()
    assert written() == before


def test_an_invalid_address_is_refused_and_a_stale_notice_form_must_be_reloaded(newsletter, settings):
    client = Client()
    before = written()
    assert sign_up(client, "not an address").status_code == 400
    page = client.get(PAGE)
    token = _TOKEN.search(page.content.decode())
    assert token
    ledger.purpose_notice_publish(purpose=newsletter, text="Version two")
    ledger.purpose_update(purpose=newsletter, min_notice_version=2)
    stale = client.post(PAGE, {"form_token": token.group(1), "address": "late@example.no"})
    assert stale.status_code == 400
    assert "Version two" in stale.content.decode()  # the fresh form shows the new text
    assert written() == before


def test_unknown_forms_are_404(newsletter):
    assert Client().get("/signup/fit24/nope").status_code == 404
    assert Client().get("/signup/nope/fit24-newsletter").status_code == 404


def test_the_json_endpoint_for_the_brands_sites(newsletter, member):
    client = Client()
    form = client.get("/api/v1/signup/fit24/fit24-newsletter")
    assert form.status_code == 200
    body = form.json()
    assert body["notice_version"] == 1 and body["honeypot_field"] == "website"
    assert body["notice_text"].startswith("Ja takk")

    def post(address: str, **extra: str):
        payload = {"brand": "fit24", "purpose": "fit24-newsletter", "address": address}
        payload |= {"form_token": body["form_token"], **extra}
        return client.post("/api/v1/signup", payload, content_type="application/json")

    new, known = post("json@example.no"), post("kari@example.no")
    assert new.status_code == known.status_code == 202
    assert new.json() == known.json()
    grant = ConsentEvent.objects.get(contact__email="json@example.no")
    assert grant.notice is not None
    assert (grant.source, grant.pending_confirmation, grant.notice.version) == ("web_form", True, 1)

    before = written()
    assert post("bot@example.no", website="x").status_code == 202
    assert post("x@example.no", form_token="forged").status_code == 409
    assert post("nonsense").status_code == 422
    assert written() == before
    assert client.get("/api/v1/signup/fit24/nope").status_code == 404
