"""The ledger's services: double opt-in, input validation, lifting suppressions, notice versions,
and that every call appends exactly one event to a chain that still verifies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.utils import timezone

from comms.contacts.models import Contact
from comms.errors import Conflict, Forbidden, InvalidInput
from comms.rights.erasure import contact_erase
from comms.suppression import selectors, services
from comms.suppression.models import ConsentEvent, ConsentState, Purpose, PurposeNotice, Suppression
from comms.suppression.services import Evidence, Principal
from tests.suppression.ledger_helpers import (
    SELF,
    STAFF,
    SYSTEM,
    confirm,
    decide,
    grant,
    object_to,
    suppress,
    update,
    withdraw,
)

MakeContact = Callable[..., Contact]
MakePurpose = Callable[..., Purpose]


def reload(suppression: Suppression) -> Suppression:
    return Suppression.objects.get(pk=suppression.pk)


@contextmanager
def appends_one_event() -> Iterator[None]:
    """The block appends exactly one ledger event, and the chain still verifies afterwards."""
    before = ConsentEvent.objects.count()
    yield
    assert ConsentEvent.objects.count() == before + 1
    assert selectors.ledger_verify().ok


# --- double opt-in --------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["web_form", "preference_centre", "sms_keyword"])
def test_a_grant_from_an_unproven_source_waits_for_confirmation(contact, purpose, source):
    event = grant(contact, purpose, source=source, principal=SELF)

    assert event.pending_confirmation is True
    assert decide(contact, purpose) == (False, "awaiting_confirmation", event.pk)


@pytest.mark.parametrize(("source", "principal"), [("front_desk", STAFF), ("api", SYSTEM), ("import", STAFF)])
def test_a_grant_from_a_proven_source_is_effective_at_once(contact, purpose, source, principal):
    event = grant(contact, purpose, source=source, principal=principal)

    assert event.pending_confirmation is False
    assert decide(contact, purpose) == (True, "consent", event.pk)


def test_a_grant_can_be_asked_to_wait_for_confirmation(contact, purpose):
    event = grant(contact, purpose, require_confirmation=True)

    assert event.pending_confirmation is True
    assert decide(contact, purpose) == (False, "awaiting_confirmation", event.pk)


def test_a_staff_grant_after_the_person_withdrew_waits_for_their_confirmation(contact, purpose):
    grant(contact, purpose)
    withdrawal = withdraw(contact, purpose, "email")

    again = grant(contact, purpose, source="front_desk", principal=STAFF)

    assert again.pending_confirmation is True
    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)
    confirmation = confirm(again)
    assert decide(contact, purpose) == (True, "consent", confirmation.pk)


def test_an_api_grant_after_the_person_withdrew_the_whole_channel_waits_for_their_confirmation(
    contact, purpose
):
    grant(contact, purpose)
    withdrawal = withdraw(contact, None, "email")

    again = grant(contact, purpose, source="api", principal=SYSTEM)

    assert again.pending_confirmation is True
    assert decide(contact, purpose) == (False, "suppressed:withdrawn", withdrawal.pk)
    confirmation = confirm(again)
    assert decide(contact, purpose) == (True, "consent", confirmation.pk)


def test_an_api_grant_after_the_person_objected_waits_for_their_confirmation(
    contact, purpose, second_purpose
):
    grant(contact, purpose, "email")
    grant(contact, purpose, "sms")
    grant(contact, second_purpose, "email")
    objection = object_to(contact)

    again = grant(contact, purpose, "email", source="api", principal=SYSTEM)

    assert again.pending_confirmation is True
    assert decide(contact, purpose) == (False, "suppressed:objection", objection.pk)
    confirmation = confirm(again)
    assert decide(contact, purpose, "email") == (True, "consent", confirmation.pk)
    # The new consent covers its own scope only: the objection still stands everywhere else.
    assert decide(contact, second_purpose, "email") == (False, "objection", objection.pk)
    assert decide(contact, purpose, "sms") == (False, "suppressed:objection", objection.pk)


def test_a_staff_grant_after_an_sms_stop_waits_for_confirmation(contact, purpose, brand):
    grant(contact, purpose, "sms")
    stop, _ = suppress(
        contact.mobile, "sms_stop", channel="sms", brand=brand, principal=SELF, source="sms_keyword"
    )

    again = grant(contact, purpose, "sms")

    assert again.pending_confirmation is True
    assert decide(contact, purpose, "sms") == (False, "suppressed:sms_stop", stop.pk)
    confirmation = confirm(again, source="sms_keyword")
    assert decide(contact, purpose, "sms") == (True, "consent", confirmation.pk)


def test_a_bounce_does_not_make_a_new_grant_wait_for_confirmation(contact, purpose, brand):
    suppress(contact.email, "hard_bounce", brand=brand)

    assert grant(contact, purpose).pending_confirmation is False


def test_a_grant_for_another_purpose_than_the_withdrawn_one_is_effective_at_once(
    contact, purpose, second_purpose
):
    grant(contact, purpose)
    withdraw(contact, purpose, "email")

    other = grant(contact, second_purpose)

    assert other.pending_confirmation is False
    assert decide(contact, second_purpose) == (True, "consent", other.pk)


def test_after_a_confirmed_new_consent_a_later_staff_grant_is_effective_at_once(contact, purpose):
    grant(contact, purpose)
    withdraw(contact, purpose, "email")
    confirm(grant(contact, purpose, source="web_form", principal=SELF))

    later = grant(contact, purpose)

    assert later.pending_confirmation is False
    assert decide(contact, purpose) == (True, "consent", later.pk)


def test_confirming_lifts_the_person_caused_suppressions_of_that_brand_and_channel(
    contact, purpose, brand, other_brand
):
    withdrawal = withdraw(contact, None, "email")
    withdrawn = Suppression.objects.get(source_event=withdrawal)
    _, complaint = suppress(contact.email, "complaint", channel="all", brand=brand)
    _, bounce = suppress(contact.email, "hard_bounce", brand=brand)
    _, stop = suppress(contact.mobile, "sms_stop", channel="sms", brand=brand)
    _, foreign = suppress(contact.email, "complaint", brand=other_brand)
    pending = grant(contact, purpose, "email", source="web_form", principal=SELF)

    confirmation = confirm(pending)

    for lifted in (withdrawn, complaint):
        assert reload(lifted).lifted_at == confirmation.recorded_at
        assert reload(lifted).lifted_by_event_id == confirmation.pk
    for kept in (bounce, stop, foreign):
        assert reload(kept).lifted_at is None
    assert decide(contact, purpose) == (False, "suppressed:hard_bounce", bounce.source_event_id)


def test_confirming_twice_raises_conflict(contact, purpose):
    pending = grant(contact, purpose, source="web_form", principal=SELF)
    confirm(pending)

    with pytest.raises(Conflict):
        confirm(pending)
    assert ConsentEvent.objects.filter(action="confirm").count() == 1


def test_confirming_a_grant_that_needs_no_confirmation_raises_conflict(contact, purpose):
    effective = grant(contact, purpose)

    with pytest.raises(Conflict):
        confirm(effective)


def test_confirming_something_that_is_not_a_grant_is_invalid(contact, purpose):
    withdrawal = withdraw(contact, purpose, "email")

    with pytest.raises(InvalidInput) as exc:
        confirm(withdrawal)
    assert exc.value.field == "confirms_event_id"


@pytest.mark.parametrize("actor", ["staff", "system"])
def test_only_the_person_can_confirm_a_grant(contact, purpose, actor):
    pending = grant(contact, purpose, source="web_form", principal=SELF)

    with pytest.raises(InvalidInput) as exc:
        confirm(pending, principal=Principal(actor=actor, recorded_by="test"))
    assert exc.value.field == "actor"
    assert decide(contact, purpose) == (False, "awaiting_confirmation", pending.pk)


def test_the_linked_guardian_can_confirm_a_minors_grant(minor, guardian, purpose):
    as_guardian = Principal(actor="guardian", guardian=guardian, recorded_by="test")
    pending = grant(minor, purpose, source="web_form", principal=as_guardian)

    confirmation = confirm(pending, principal=as_guardian)

    assert decide(minor, purpose) == (True, "consent", confirmation.pk)


def test_confirming_a_grant_of_an_erased_contact_raises_conflict(contact, purpose):
    pending = grant(contact, purpose, source="web_form", principal=SELF)
    contact_erase(contact=contact, source="rights_request", principal=STAFF)
    pending.refresh_from_db()
    before = ConsentEvent.objects.count()

    with pytest.raises(Conflict):
        confirm(pending)
    assert ConsentEvent.objects.count() == before


def test_a_guardian_who_is_no_longer_linked_cannot_confirm(minor, guardian, purpose):
    as_guardian = Principal(actor="guardian", guardian=guardian, recorded_by="test")
    pending = grant(minor, purpose, source="web_form", principal=as_guardian)
    update(minor, guardian_id=None)
    pending.refresh_from_db()

    raises_invalid("actor_contact_id", lambda: confirm(pending, principal=as_guardian))


def test_confirming_for_one_brand_narrows_a_stop_for_every_brand_to_the_other_brands(
    contact, purpose, make_contact, make_purpose, other_brand
):
    same_person = make_contact(brand=other_brand.key, mobile=contact.mobile, email=None)
    foreign_purpose = make_purpose("klinikk-news", brand=other_brand)
    grant(same_person, foreign_purpose, "sms")
    stop, everywhere = suppress(contact.mobile, "sms_stop", channel="sms", brand=None, principal=SELF)
    pending = grant(contact, purpose, "sms")
    assert pending.pending_confirmation is True

    confirmation = confirm(pending, source="sms_keyword")

    assert decide(contact, purpose, "sms") == (True, "consent", confirmation.pk)
    assert decide(same_person, foreign_purpose, "sms") == (False, "suppressed:sms_stop", stop.pk)
    assert reload(everywhere).lifted_by_event_id == confirmation.pk
    narrowed = Suppression.objects.get(lifted_at__isnull=True)
    assert (narrowed.brand_id, narrowed.channel, narrowed.reason, narrowed.source_event_id) == (
        other_brand.pk,
        "sms",
        "sms_stop",
        stop.pk,
    )
    assert narrowed.created_at == everywhere.created_at


def test_a_confirmation_that_occurred_before_a_later_stop_does_not_lift_the_stop(contact, purpose, brand):
    now = timezone.now()
    pending = grant(
        contact, purpose, "sms", source="sms_keyword", principal=SELF, occurred_at=now - dt.timedelta(hours=3)
    )
    stop, stopped = suppress(
        contact.mobile,
        "sms_stop",
        channel="sms",
        brand=brand,
        principal=SELF,
        source="sms_keyword",
        occurred_at=now - dt.timedelta(hours=1),
    )

    # The person's confirmation from two hours ago reaches us only now: their later STOPP stands.
    confirm(pending, source="sms_keyword", occurred_at=now - dt.timedelta(hours=2))

    assert reload(stopped).lifted_at is None
    assert decide(contact, purpose, "sms") == (False, "suppressed:sms_stop", stop.pk)


# --- bad input ------------------------------------------------------------------------------


def raises_invalid(field: str, call: Callable[[], object]) -> None:
    before = ConsentEvent.objects.count()
    with pytest.raises(InvalidInput) as exc:
        call()
    assert exc.value.field == field
    assert ConsentEvent.objects.count() == before


def test_a_grant_for_a_channel_the_purpose_does_not_allow_is_invalid(contact, make_purpose):
    email_only = make_purpose("email-only", channels=("email",))

    raises_invalid("channel", lambda: grant(contact, email_only, "sms"))


def test_a_grant_for_an_unknown_channel_is_invalid(contact, purpose):
    raises_invalid("channel", lambda: grant(contact, purpose, "fax"))


def test_a_grant_for_a_purpose_of_another_brand_is_invalid(contact, make_purpose, other_brand):
    foreign = make_purpose("klinikk-news", brand=other_brand)

    raises_invalid("purpose", lambda: grant(contact, foreign))


def test_a_soft_opt_in_for_a_guest_is_invalid(make_contact, soft_purpose):
    guest = make_contact(kind="guest", purchase_at=timezone.now())

    raises_invalid("basis", lambda: grant(guest, soft_purpose, basis="soft_opt_in", opt_out_offered=True))


def test_a_soft_opt_in_for_a_purpose_without_it_is_invalid(make_contact, purpose):
    buyer = make_contact(purchase_at=timezone.now())

    raises_invalid("basis", lambda: grant(buyer, purpose, basis="soft_opt_in", opt_out_offered=True))


def test_contract_as_the_basis_of_a_marketing_purpose_is_invalid(contact, purpose):
    raises_invalid("basis", lambda: grant(contact, purpose, basis="contract"))


def test_an_unknown_basis_is_invalid(contact, purpose):
    raises_invalid("basis", lambda: grant(contact, purpose, basis="legitimate_interest"))


def test_a_guardian_who_is_not_the_linked_guardian_is_invalid(minor, purpose, make_contact):
    stranger = Principal(actor="guardian", guardian=make_contact(), recorded_by="test")

    raises_invalid("actor_contact_id", lambda: grant(minor, purpose, principal=stranger))


def test_a_guardian_action_without_the_guardian_contact_is_invalid(minor, purpose):
    raises_invalid("actor_contact_id", lambda: grant(minor, purpose, principal=Principal(actor="guardian")))


def test_a_self_grant_for_a_known_minor_is_invalid(minor, purpose):
    raises_invalid("actor", lambda: grant(minor, purpose, principal=SELF, source="web_form"))


def test_a_staff_grant_for_a_known_minor_is_invalid(minor, purpose):
    raises_invalid("actor", lambda: grant(minor, purpose, principal=STAFF))


def test_a_grant_to_an_unknown_notice_version_is_invalid(contact, purpose):
    raises_invalid("notice_version", lambda: grant(contact, purpose, notice_version=2))


def test_a_grant_that_occurred_in_the_future_is_invalid(contact, purpose):
    raises_invalid(
        "occurred_at", lambda: grant(contact, purpose, occurred_at=timezone.now() + dt.timedelta(hours=1))
    )


def test_a_grant_for_a_contact_without_an_address_for_the_channel_is_invalid(make_contact, purpose):
    no_mobile = make_contact(mobile=None)

    raises_invalid("channel", lambda: grant(no_mobile, purpose, "sms"))


def test_an_unknown_source_is_invalid(contact, purpose):
    raises_invalid("source", lambda: grant(contact, purpose, source="carrier_pigeon"))


def test_a_grant_for_an_erased_contact_raises_conflict(contact, purpose):
    erased = contact_erase(contact=contact, source="rights_request", principal=STAFF)
    before = ConsentEvent.objects.count()

    with pytest.raises(Conflict):
        grant(erased, purpose)
    assert ConsentEvent.objects.count() == before


def test_a_withdrawal_for_one_purpose_must_name_its_channel(contact, purpose):
    raises_invalid("channel", lambda: withdraw(contact, purpose, None))


def test_a_withdrawal_for_a_purpose_of_another_brand_is_invalid(contact, make_purpose, other_brand):
    foreign = make_purpose("klinikk-news", brand=other_brand)

    raises_invalid("purpose", lambda: withdraw(contact, foreign, "email"))


def test_a_suppression_with_an_unknown_reason_is_invalid(contact):
    raises_invalid("reason", lambda: suppress(contact.email, "bored"))


# --- lifting suppressions -------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["hard_bounce", "blocked_recipient"])
def test_staff_can_lift_a_bounce_or_an_operator_block_and_an_event_is_appended(
    contact, purpose, brand, reason
):
    effective = grant(contact, purpose)
    _, suppression = suppress(contact.email, reason, brand=brand)
    before = ConsentEvent.objects.count()

    lift = services.suppression_lift(suppression=suppression, source="admin", principal=STAFF)

    assert ConsentEvent.objects.count() == before + 1
    assert (lift.action, lift.reason, lift.address_key, lift.channel, lift.brand_id) == (
        "lift_suppression",
        reason,
        suppression.address_key,
        "email",
        brand.pk,
    )
    lifted = reload(suppression)
    assert (lifted.lifted_at, lifted.lifted_by_event_id) == (lift.recorded_at, lift.pk)
    assert decide(contact, purpose) == (True, "consent", effective.pk)
    assert selectors.ledger_verify().ok


@pytest.mark.parametrize("reason", ["withdrawn", "objection", "sms_stop", "complaint", "erased"])
def test_staff_cannot_lift_what_the_person_caused_or_an_erasure(contact, brand, reason):
    _, suppression = suppress(contact.email, reason, brand=brand)
    before = ConsentEvent.objects.count()

    with pytest.raises(Forbidden):
        services.suppression_lift(suppression=suppression, source="admin", principal=STAFF)
    assert ConsentEvent.objects.count() == before
    assert reload(suppression).lifted_at is None


def test_an_erasure_suppression_cannot_be_lifted_by_staff(contact):
    contact_erase(contact=contact, source="rights_request", principal=STAFF)
    erased = Suppression.objects.filter(reason="erased")
    assert erased.count() == 2

    for suppression in erased:
        with pytest.raises(Forbidden):
            services.suppression_lift(suppression=suppression, source="admin", principal=STAFF)


def test_lifting_a_suppression_twice_raises_conflict(contact, brand):
    _, suppression = suppress(contact.email, "hard_bounce", brand=brand)
    services.suppression_lift(suppression=suppression, source="admin", principal=STAFF)
    before = ConsentEvent.objects.count()

    with pytest.raises(Conflict):
        services.suppression_lift(suppression=suppression, source="admin", principal=STAFF)
    assert ConsentEvent.objects.count() == before


def test_adding_an_active_suppression_again_records_the_event_but_no_second_suppression(contact, brand):
    suppress(contact.email, "hard_bounce", brand=brand)

    event, again = services.suppression_add(
        channel="email",
        address=contact.email,
        reason="hard_bounce",
        source="api",
        principal=STAFF,
        brand=brand,
    )

    assert again is None
    assert event.action == "suppress"
    assert Suppression.objects.count() == 1


# --- notice versions ------------------------------------------------------------------------


def test_publishing_a_notice_creates_the_next_version_each_time(purpose):
    second = services.purpose_notice_publish(purpose=purpose, text="Version two")
    third = services.purpose_notice_publish(purpose=purpose, text="Version three")

    assert (second.version, third.version) == (2, 3)
    assert list(purpose.notices.order_by("version").values_list("version", "text")) == [
        (1, "Notice for fit24-newsletter"),
        (2, "Version two"),
        (3, "Version three"),
    ]


def test_publishing_the_same_text_again_returns_the_latest_version_without_a_new_one(purpose):
    second = services.purpose_notice_publish(purpose=purpose, text="Version two")

    again = services.purpose_notice_publish(purpose=purpose, text="Version two")

    assert again.pk == second.pk
    assert PurposeNotice.objects.filter(purpose=purpose).count() == 2


def test_publishing_an_earlier_text_again_is_a_new_version(purpose):
    services.purpose_notice_publish(purpose=purpose, text="Version two")

    back = services.purpose_notice_publish(purpose=purpose, text="Notice for fit24-newsletter")

    assert back.version == 3


def test_publishing_an_empty_notice_is_invalid(purpose):
    with pytest.raises(InvalidInput) as exc:
        services.purpose_notice_publish(purpose=purpose, text="   ")
    assert exc.value.field == "text"


def test_a_grant_records_the_current_notice(contact, purpose):
    services.purpose_notice_publish(purpose=purpose, text="Version two")
    current = services.purpose_notice_publish(purpose=purpose, text="Version three")

    event = grant(contact, purpose)

    assert event.notice_id == current.pk
    assert event.notice is not None and event.notice.version == 3


def test_each_grant_records_the_notice_current_at_its_append(make_contact, purpose):
    # The service keeps notice versions it has loaded (on PostgreSQL the append's prelude names
    # the current one): a version published between two grants is the second one's.
    first = grant(make_contact(), purpose)
    current = services.purpose_notice_publish(purpose=purpose, text="Version two")
    second = grant(make_contact(), purpose)
    third = grant(make_contact(), purpose)

    assert first.notice is not None and first.notice.version == 1
    assert second.notice_id == third.notice_id == current.pk
    assert second.notice is not None and second.notice.version == 2
    assert ConsentState.objects.get(contact=third.contact, purpose=purpose).grant_notice_version == 2


def test_a_grant_for_a_purpose_without_a_notice_is_invalid_and_writes_nothing(contact, purpose):
    bare = Purpose.objects.create(brand=purpose.brand, key="uten-tekst", name="Uten tekst")
    before = ConsentEvent.objects.count()
    raises_invalid("notice_version", lambda: grant(contact, bare))
    assert ConsentEvent.objects.count() == before


def test_a_grant_honours_an_explicit_older_notice_version(contact, purpose):
    first = purpose.notices.get(version=1)
    services.purpose_notice_publish(purpose=purpose, text="Version two")

    event = grant(contact, purpose, notice_version=1)

    assert event.notice_id == first.pk


def test_earlier_grants_keep_pointing_at_the_notice_they_were_shown(contact, purpose):
    event = grant(contact, purpose)
    services.purpose_notice_publish(purpose=purpose, text="Version two")

    assert ConsentEvent.objects.get(pk=event.pk).notice == purpose.notices.get(version=1)


def test_the_minimum_notice_version_cannot_exceed_the_latest_version(purpose):
    with pytest.raises(InvalidInput) as exc:
        services.purpose_update(purpose=purpose, min_notice_version=2)
    assert exc.value.field == "min_notice_version"


def test_a_confirmation_carries_the_notice_of_the_grant_it_confirms(contact, purpose):
    pending = grant(contact, purpose, source="web_form", principal=SELF)
    services.purpose_notice_publish(purpose=purpose, text="Version two")

    confirmation = confirm(pending)

    assert (confirmation.notice_id, confirmation.confirms_id) == (pending.notice_id, pending.pk)


# --- one event per call, chain intact -------------------------------------------------------


def test_a_grant_appends_exactly_one_event(contact, purpose):
    with appends_one_event():
        grant(contact, purpose, evidence=Evidence(ip="192.0.2.1", user_agent="pytest"))


def test_a_confirmation_appends_exactly_one_event(contact, purpose):
    withdraw(contact, None, "email")
    pending = grant(contact, purpose, source="web_form", principal=SELF)
    with appends_one_event():
        confirm(pending)


def test_a_purpose_withdrawal_appends_exactly_one_event(contact, purpose):
    with appends_one_event():
        withdraw(contact, purpose, "email")


def test_a_withdrawal_of_every_channel_appends_exactly_one_event(contact):
    with appends_one_event():
        withdraw(contact, None, None)
    assert Suppression.objects.filter(reason="withdrawn").count() == 2


def test_an_objection_appends_exactly_one_event(contact):
    with appends_one_event():
        object_to(contact)
    assert Suppression.objects.filter(reason="objection", channel="all").count() == 2


def test_a_restriction_and_its_lift_append_one_event_each(contact):
    with appends_one_event():
        services.restriction_set(contact=contact, source="rights_request", principal=STAFF)
    with appends_one_event():
        services.restriction_lift(contact=contact, source="rights_request", principal=STAFF)


def test_a_suppression_appends_exactly_one_event(contact, brand):
    with appends_one_event():
        suppress(contact.email, "hard_bounce", brand=brand)


def test_lifting_a_suppression_appends_exactly_one_event(contact, brand):
    _, suppression = suppress(contact.email, "hard_bounce", brand=brand)
    with appends_one_event():
        services.suppression_lift(suppression=suppression, source="admin", principal=STAFF)


def test_an_erasure_appends_exactly_one_event(contact, purpose):
    grant(contact, purpose, evidence=Evidence(ip="192.0.2.1", user_agent="pytest"))
    with appends_one_event():
        contact_erase(contact=contact, source="rights_request", principal=STAFF)


def test_a_long_history_keeps_the_chain_valid(contact, purpose, second_purpose, brand, settings):
    settings.LEDGER_CHAINS = 1  # one chain: the contact's events and the address-only suppression's
    grant(contact, purpose)
    grant(contact, second_purpose, "sms")
    withdraw(contact, purpose, "email")
    confirm(grant(contact, purpose, source="web_form", principal=SELF))
    _, bounce = suppress(contact.email, "hard_bounce", brand=brand)
    services.suppression_lift(suppression=bounce, source="admin", principal=STAFF)
    services.restriction_set(contact=contact, source="rights_request", principal=STAFF)
    services.restriction_lift(contact=contact, source="rights_request", principal=STAFF)
    object_to(contact)

    result = selectors.ledger_verify()

    assert result.ok
    assert result.events_checked == ConsentEvent.objects.count() == 10
    assert list(ConsentEvent.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 11))
