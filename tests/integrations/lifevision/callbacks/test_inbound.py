"""POST /hooks/lifevision/inbound: STOPP, STOPP ALT, START + JA, HJELP, and bad input."""

from __future__ import annotations

import pytest

from comms.campaigns.models import CallbackReceipt, Reply, ReplyStatus
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent, Suppression
from integrations.lifevision import inbound as lifevision_inbound
from tests.integrations.lifevision.callbacks.callback_helpers import INBOUND, inbound, post_signed

pytestmark = pytest.mark.django_db(transaction=True)


def grant(contact, purpose, staff, channel="sms"):
    return ledger.consent_grant(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=staff,
    )


def replies_to(fake, number):
    return [m for m in fake.messages if m["to"] == number]


def text_in(fake, run_actors, payload):
    response = post_signed(INBOUND, payload)
    assert response.status_code == 200, response.content
    run_actors()
    return response


@pytest.fixture
def member(make_contact, purpose, staff):
    contact = make_contact()
    grant(contact, purpose, staff)
    return contact


def sms_decision(contact, purpose):
    decision = gate.check(contact=contact, channel="sms", purpose=purpose)
    return decision.allowed, decision.reason


# --- the keyword -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("Stopp", "stop"),
        ("stopp!", "stop"),
        (" STOP please", "stop"),
        ("Avmeld.", "stop"),
        ("slutt takk", "stop"),
        ("«STOPP»", "stop"),
        ("- stopp", "stop"),
        ("STOPP ALT", "stop_all"),
        ("stopp, alt!", "stop_all"),
        ("Start", "start"),
        ("ja!", "confirm"),
        ("Hjelp", "help"),
        ("HELP me", "help"),
        ("Hei, når åpner dere?", None),
        ("stoppeklokke", None),
        ("", None),
        ("   ", None),
    ],
)
def test_the_first_word_decides(text, keyword):
    assert lifevision_inbound.keyword_of(text) == keyword


# --- STOPP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Stopp", "stopp!", " STOP please", "Avmeld.", "slutt takk"])
def test_stopp_withdraws_sms_for_the_brand_and_is_confirmed_by_exactly_one_reply(
    member, purpose, fake_lifevision, run_actors, text
):
    assert sms_decision(member, purpose) == (True, "consent")
    payload = inbound(member.mobile, text)
    text_in(fake_lifevision, run_actors, payload)

    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    withdrawal = ConsentEvent.objects.get(contact=member, action="withdraw")
    assert (withdrawal.channel, withdrawal.purpose_id, withdrawal.source, withdrawal.actor) == (
        "sms",
        None,
        "sms_keyword",
        "self",
    )
    [reply] = replies_to(fake_lifevision, member.mobile)
    assert reply["sender"] == "FIT24"
    assert reply["text"].startswith("Du er nå meldt av SMS fra FIT24.")
    assert Reply.objects.get().status == ReplyStatus.SENT

    # LifeVision delivers the same inbound again: nothing more happens.
    repeat = post_signed(INBOUND, payload)
    run_actors()
    assert repeat.json() == {"status": "duplicate"}
    assert len(replies_to(fake_lifevision, member.mobile)) == 1
    assert ConsentEvent.objects.filter(contact=member, action="withdraw").count() == 1


def test_stopp_to_one_brand_leaves_the_other_brand_alone(
    member, purpose, make_contact, make_purpose, other_brand, staff, fake_lifevision, run_actors
):
    twin = make_contact(brand=other_brand.key, mobile=member.mobile)
    other_purpose = make_purpose(key="k24-news", brand=other_brand)
    grant(twin, other_purpose, staff)
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    assert sms_decision(twin, other_purpose) == (True, "consent")
    # Email is another channel: an SMS keyword does not touch it.
    grant(member, purpose, staff, channel="email")
    assert gate.check(contact=member, channel="email", purpose=purpose).allowed


def test_stopp_alt_stops_sms_from_every_brand(
    member, purpose, make_contact, make_purpose, other_brand, staff, fake_lifevision, run_actors
):
    twin = make_contact(brand=other_brand.key, mobile=member.mobile)
    other_purpose = make_purpose(key="k24-news", brand=other_brand)
    grant(twin, other_purpose, staff)
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP ALT"))
    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    assert sms_decision(twin, other_purpose) == (False, "suppressed:sms_stop")
    everywhere = Suppression.objects.get(address_key=address_key("sms", member.mobile), brand=None)
    assert everywhere.reason == "sms_stop"
    [reply] = replies_to(fake_lifevision, member.mobile)
    assert "FIT24" in reply["text"] and "Klinikk24" in reply["text"]


def test_stopp_to_a_shared_number_stops_every_brand(
    member, purpose, make_contact, make_purpose, other_brand, staff, fake_lifevision, run_actors
):
    twin = make_contact(brand=other_brand.key, mobile=member.mobile)
    other_purpose = make_purpose(key="k24-news", brand=other_brand)
    grant(twin, other_purpose, staff)
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "stopp", to="2020"))
    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    assert sms_decision(twin, other_purpose) == (False, "suppressed:sms_stop")
    [reply] = replies_to(fake_lifevision, member.mobile)
    assert reply["sender"] == "2020"


def test_stopp_from_a_number_we_do_not_know_still_suppresses_it(
    brand, make_contact, purpose, staff, fake_lifevision, run_actors
):
    number = "+4741999888"
    text_in(fake_lifevision, run_actors, inbound(number, "STOPP"))
    suppression = Suppression.objects.get(address_key=address_key("sms", number))
    assert (suppression.reason, suppression.brand_id) == ("sms_stop", brand.pk)
    assert len(replies_to(fake_lifevision, number)) == 1
    # The number is imported later, with a consent from the front desk: it is still not messaged.
    newcomer = make_contact(mobile=number)
    grant(newcomer, purpose, staff)
    assert sms_decision(newcomer, purpose) == (False, "suppressed:sms_stop")


def test_a_transient_provider_failure_still_sends_the_reply_once(member, fake_lifevision, run_actors):
    fake_lifevision.fail_next(1, status=503, retry_after=0.05)
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    assert len(replies_to(fake_lifevision, member.mobile)) == 1
    reply = Reply.objects.get()
    assert (reply.status, reply.attempts) == (ReplyStatus.SENT, 2)


def test_a_reply_the_provider_refuses_is_recorded_as_failed(member, fake_lifevision, run_actors):
    fake_lifevision.fail_next(1, status=400)
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    reply = Reply.objects.get()
    assert reply.status == ReplyStatus.FAILED
    assert "400" in reply.last_error
    assert replies_to(fake_lifevision, member.mobile) == []


# --- START and JA ------------------------------------------------------------------------------


def test_start_allows_nothing_until_the_person_confirms_with_ja(member, purpose, fake_lifevision, run_actors):
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "START"))
    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    pending = ConsentEvent.objects.get(contact=member, action="grant", source="sms_keyword")
    assert pending.pending_confirmation
    assert "JA" in replies_to(fake_lifevision, member.mobile)[-1]["text"]

    text_in(fake_lifevision, run_actors, inbound(member.mobile, "Ja"))
    assert sms_decision(member, purpose) == (True, "consent")
    confirm = ConsentEvent.objects.get(contact=member, action="confirm")
    assert (confirm.confirms_id, confirm.source, confirm.actor) == (pending.pk, "sms_keyword", "self")
    assert len(replies_to(fake_lifevision, member.mobile)) == 3
    assert replies_to(fake_lifevision, member.mobile)[-1]["text"].startswith("Takk!")


def test_ja_without_start_changes_nothing_and_gets_no_reply(member, purpose, fake_lifevision, run_actors):
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "JA"))
    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    assert len(replies_to(fake_lifevision, member.mobile)) == 1
    assert CallbackReceipt.objects.order_by("-id")[0].outcome.startswith("confirm: nothing")


def test_ja_after_a_new_stopp_does_not_revive_the_start(member, purpose, fake_lifevision, run_actors):
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "START"))
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "STOPP"))
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "JA"))
    assert sms_decision(member, purpose) == (False, "suppressed:sms_stop")
    assert not ConsentEvent.objects.filter(contact=member, action="confirm").exists()


def test_start_from_someone_who_never_consented_asks_nothing(make_contact, fake_lifevision, run_actors):
    stranger = make_contact()
    text_in(fake_lifevision, run_actors, inbound(stranger.mobile, "START"))
    assert not ConsentEvent.objects.filter(contact=stranger).exists()
    assert replies_to(fake_lifevision, stranger.mobile) == []


# --- HJELP and the harmless rest -----------------------------------------------------------------


def test_hjelp_says_who_we_are_and_how_to_stop(member, fake_lifevision, run_actors):
    text_in(fake_lifevision, run_actors, inbound(member.mobile, "hjelp"))
    [reply] = replies_to(fake_lifevision, member.mobile)
    assert reply["text"].startswith("FIT24:")
    assert "STOPP" in reply["text"]
    assert not ConsentEvent.objects.filter(contact=member).exclude(action="grant").exists()


@pytest.mark.parametrize("text", ["START", "JA", "HJELP", "Hei der"])
def test_keywords_from_an_unknown_number_are_a_harmless_no_op(fake_lifevision, run_actors, brand, text):
    number = "+4741999777"
    response = text_in(fake_lifevision, run_actors, inbound(number, text))
    assert response.json() == {"status": "accepted"}
    assert fake_lifevision.messages == []
    assert not ConsentEvent.objects.exists()
    assert CallbackReceipt.objects.get().processed_at is not None


@pytest.mark.parametrize("number", ["hemmelig", "12", "+4722000000"])
def test_stopp_from_a_number_that_is_not_a_mobile_is_logged_and_ignored(
    fake_lifevision, run_actors, brand, number
):
    text_in(fake_lifevision, run_actors, inbound(number, "STOPP"))
    assert CallbackReceipt.objects.get().outcome == "invalid number"
    assert not ConsentEvent.objects.exists()
    assert fake_lifevision.messages == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{", "body"),
        (b'{"provider_id": "lv-in-1", "to": "FIT24", "text": "STOPP"}', "from"),
        (b'{"provider_id": "lv-in-1", "from": "+4741234567", "text": "STOPP"}', "to"),
        (b'{"provider_id": "lv-in-1", "from": "+4741234567", "to": "FIT24"}', "text"),
        (b'{"provider_id": "lv-in-1", "from": "+4741234567", "to": "FIT24", "text": 7}', "text"),
        (b'{"from": "+4741234567", "to": "FIT24", "text": "STOPP"}', "provider_id"),
    ],
)
def test_a_malformed_inbound_is_a_400_naming_the_field(fake_lifevision, raw, field):
    response = post_signed(INBOUND, raw=raw)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert not CallbackReceipt.objects.exists()


def test_get_is_not_allowed(client):
    assert client.get(INBOUND).status_code == 405
