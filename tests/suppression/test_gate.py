"""The gate's precedence (DESIGN §3): every rule with its reason code and the event it rests on,
the order between the rules (first match wins), decisions as of a past time, backdated events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.conf import settings
from django.utils import timezone

from comms.contacts.models import Contact
from comms.suppression import services
from comms.suppression.models import ConsentEvent, Purpose, Suppression
from comms.suppression.services import Evidence, Principal
from tests.suppression.ledger_helpers import (
    SELF,
    STAFF,
    a_minor,
    decide,
    grant,
    object_to,
    suppress,
    update,
    withdraw,
    years_ago,
)

MakeContact = Callable[..., Contact]
MakePurpose = Callable[..., Purpose]


def restrict(contact: Contact) -> ConsentEvent:
    return services.restriction_set(contact=contact, source="rights_request", principal=STAFF)


@pytest.fixture
def buyer(make_contact: MakeContact) -> Contact:
    return make_contact(purchase_at=timezone.now() - dt.timedelta(days=30))


def as_guardian(guardian: Contact) -> Principal:
    return Principal(actor="guardian", guardian=guardian, recorded_by="test")


# --- rule 1: suppression --------------------------------------------------------------------


def test_it_denies_an_address_suppressed_for_the_channel_with_the_suppression_reason(contact, purpose, brand):
    grant(contact, purpose)
    bounce, _ = suppress(contact.email, "hard_bounce", brand=brand)

    assert decide(contact, purpose) == (False, "suppressed:hard_bounce", bounce.pk)


def test_it_denies_an_address_suppressed_for_all_marketing(contact, purpose, brand):
    grant(contact, purpose)
    complaint, _ = suppress(contact.email, "complaint", channel="all", brand=brand)

    assert decide(contact, purpose) == (False, "suppressed:complaint", complaint.pk)


def test_a_suppression_of_one_channel_does_not_deny_the_other_channel(contact, purpose, brand):
    sms_grant = grant(contact, purpose, "sms")
    suppress(contact.email, "hard_bounce", brand=brand)

    assert decide(contact, purpose, "sms") == (True, "consent", sms_grant.pk)


def test_a_suppression_for_every_brand_applies_to_this_brand(contact, purpose):
    grant(contact, purpose)
    bounce, _ = suppress(contact.email, "hard_bounce", brand=None)

    assert decide(contact, purpose) == (False, "suppressed:hard_bounce", bounce.pk)


def test_a_suppression_of_another_brand_does_not_apply(contact, purpose, other_brand):
    event = grant(contact, purpose)
    suppress(contact.email, "complaint", channel="all", brand=other_brand)

    assert decide(contact, purpose) == (True, "consent", event.pk)


def test_a_lifted_suppression_no_longer_counts(contact, purpose, brand):
    event = grant(contact, purpose)
    suppress(contact.email, "hard_bounce", brand=brand)
    services.suppression_lift(suppression=Suppression.objects.get(), source="admin", principal=STAFF)

    assert decide(contact, purpose) == (True, "consent", event.pk)


def test_a_suppression_denies_a_contact_who_never_consented(contact, purpose, brand):
    bounce, _ = suppress(contact.email, "blocked_recipient", brand=brand)

    assert decide(contact, purpose) == (False, "suppressed:blocked_recipient", bounce.pk)


def test_a_suppression_of_an_explicit_address_applies_to_that_address_only(contact, purpose, brand):
    event = grant(contact, purpose)
    bounce, _ = suppress("old@example.no", "hard_bounce", brand=brand)

    assert decide(contact, purpose, address="old@example.no") == (False, "suppressed:hard_bounce", bounce.pk)
    assert decide(contact, purpose) == (True, "consent", event.pk)


# --- rule 2: objection ----------------------------------------------------------------------


def test_an_objection_suppresses_every_address_of_the_contact_on_every_purpose(
    contact, purpose, second_purpose
):
    grant(contact, purpose, "email")
    grant(contact, purpose, "sms")
    grant(contact, second_purpose, "email")
    objection = object_to(contact)

    for each_purpose in (purpose, second_purpose):
        for channel in ("email", "sms"):
            assert decide(contact, each_purpose, channel) == (False, "suppressed:objection", objection.pk)


def test_an_objection_follows_the_contact_to_a_new_address_with_reason_objection(
    contact, purpose, second_purpose
):
    grant(contact, purpose, "email")
    grant(contact, second_purpose, "sms")
    objection = object_to(contact)
    moved = update(contact, email="new-address@example.no", mobile="+4741299001")

    assert decide(moved, purpose, "email") == (False, "objection", objection.pk)
    assert decide(moved, purpose, "sms") == (False, "objection", objection.pk)
    assert decide(moved, second_purpose, "sms") == (False, "objection", objection.pk)


def test_an_objection_wins_over_a_later_withdrawal(contact, purpose):
    grant(contact, purpose)
    objection = object_to(contact)
    withdraw(contact, purpose, "email")
    moved = update(contact, email="new-address@example.no")

    assert decide(moved, purpose) == (False, "objection", objection.pk)


def test_an_objection_wins_over_an_earlier_grant_by_staff(contact, purpose):
    grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=2))
    objection = object_to(contact, occurred_at=timezone.now() - dt.timedelta(days=1))
    moved = update(contact, email="new-address@example.no")

    assert decide(moved, purpose) == (False, "objection", objection.pk)


def test_an_objection_stops_at_the_brand_boundary(contact, purpose, make_contact, make_purpose, other_brand):
    same_person = make_contact(brand=other_brand.key, email=contact.email, mobile=contact.mobile)
    foreign_purpose = make_purpose("klinikk-news", brand=other_brand)
    foreign_grant = grant(same_person, foreign_purpose)
    object_to(contact)

    assert decide(same_person, foreign_purpose) == (True, "consent", foreign_grant.pk)


def test_an_erasure_suppresses_the_address_for_every_brand(
    contact, purpose, make_contact, make_purpose, other_brand, brand
):
    email = contact.email
    same_person = make_contact(brand=other_brand.key, email=email)
    foreign_purpose = make_purpose("klinikk-news", brand=other_brand)
    grant(same_person, foreign_purpose)
    erasure = services.erasure_record(contact=contact, source="rights_request", principal=STAFF)

    assert decide(same_person, foreign_purpose) == (False, "suppressed:erased", erasure.pk)


# --- rule 3: restriction --------------------------------------------------------------------


def test_it_denies_a_restricted_contact_with_reason_restricted(contact, purpose):
    grant(contact, purpose, "email")
    grant(contact, purpose, "sms")
    restriction = restrict(contact)

    assert decide(contact, purpose, "email") == (False, "restricted", restriction.pk)
    assert decide(contact, purpose, "sms") == (False, "restricted", restriction.pk)


def test_lifting_a_restriction_restores_the_earlier_consent(contact, purpose):
    event = grant(contact, purpose)
    restrict(contact)
    services.restriction_lift(contact=contact, source="rights_request", principal=STAFF)

    assert decide(contact, purpose) == (True, "consent", event.pk)


def test_a_second_restriction_after_a_lift_denies_again_on_the_new_event(contact, purpose):
    grant(contact, purpose)
    restrict(contact)
    services.restriction_lift(contact=contact, source="rights_request", principal=STAFF)
    again = restrict(contact)

    assert decide(contact, purpose) == (False, "restricted", again.pk)


def test_a_new_grant_does_not_lift_a_restriction(contact, purpose):
    restriction = restrict(contact)
    grant(contact, purpose)

    assert decide(contact, purpose) == (False, "restricted", restriction.pk)


# --- rule 4: withdrawal ---------------------------------------------------------------------


def test_it_denies_a_withdrawn_purpose_with_reason_withdrawn(contact, purpose):
    grant(contact, purpose)
    withdrawal = withdraw(contact, purpose, "email")

    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)
    assert not Suppression.objects.exists()


def test_a_withdrawal_for_one_purpose_does_not_affect_another_purpose(contact, purpose, second_purpose):
    grant(contact, purpose)
    other = grant(contact, second_purpose)
    withdraw(contact, purpose, "email")

    assert decide(contact, second_purpose) == (True, "consent", other.pk)


def test_a_withdrawal_for_one_channel_does_not_affect_the_other_channel(contact, purpose):
    grant(contact, purpose, "email")
    sms_grant = grant(contact, purpose, "sms")
    withdraw(contact, purpose, "email")

    assert decide(contact, purpose, "sms") == (True, "consent", sms_grant.pk)


def test_a_channel_wide_withdrawal_suppresses_the_address_for_every_purpose_of_that_channel(
    contact, purpose, second_purpose
):
    grant(contact, purpose)
    grant(contact, second_purpose)
    sms_grant = grant(contact, purpose, "sms")
    withdrawal = withdraw(contact, None, "email")

    assert decide(contact, purpose) == (False, "suppressed:withdrawn", withdrawal.pk)
    assert decide(contact, second_purpose) == (False, "suppressed:withdrawn", withdrawal.pk)
    assert decide(contact, purpose, "sms") == (True, "consent", sms_grant.pk)


def test_a_channel_wide_withdrawal_follows_the_contact_to_a_new_address(contact, purpose, second_purpose):
    grant(contact, purpose)
    grant(contact, second_purpose)
    withdrawal = withdraw(contact, None, "email")
    moved = update(contact, email="new-address@example.no")

    assert decide(moved, purpose) == (False, "withdrawn", withdrawal.pk)
    assert decide(moved, second_purpose) == (False, "withdrawn", withdrawal.pk)


def test_a_withdrawal_of_every_channel_denies_both_channels(contact, purpose):
    grant(contact, purpose, "email")
    grant(contact, purpose, "sms")
    withdrawal = withdraw(contact, None, None)

    assert decide(contact, purpose, "email") == (False, "suppressed:withdrawn", withdrawal.pk)
    assert decide(contact, purpose, "sms") == (False, "suppressed:withdrawn", withdrawal.pk)


def test_a_later_purpose_grant_by_staff_does_not_reopen_a_withdrawn_purpose(contact, purpose):
    grant(contact, purpose)
    withdrawal = withdraw(contact, purpose, "email")
    again = grant(contact, purpose)

    assert again.pending_confirmation is True
    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)


# --- rule 5: minors -------------------------------------------------------------------------


def test_it_denies_a_self_grant_once_the_contact_turns_out_to_be_a_minor(contact, purpose):
    event = grant(contact, purpose, principal=SELF)
    assert decide(contact, purpose) == (True, "consent", event.pk)

    minor = update(contact, birth_date=a_minor())

    assert decide(minor, purpose) == (False, "minor_without_guardian", event.pk)


def test_it_allows_a_minor_whose_linked_guardian_gave_the_consent(minor, guardian, purpose):
    event = grant(minor, purpose, principal=as_guardian(guardian))

    assert decide(minor, purpose) == (True, "consent", event.pk)


def test_it_denies_a_minor_whose_guardian_was_unlinked_after_the_grant(minor, guardian, purpose):
    event = grant(minor, purpose, principal=as_guardian(guardian))
    unlinked = update(minor, guardian_id=None)

    assert decide(unlinked, purpose) == (False, "minor_without_guardian", event.pk)


def test_it_denies_a_minor_whose_grant_came_from_a_former_guardian(minor, guardian, purpose, make_contact):
    event = grant(minor, purpose, principal=as_guardian(guardian))
    relinked = update(minor, guardian_id=make_contact().pk)

    assert decide(relinked, purpose) == (False, "minor_without_guardian", event.pk)


def test_a_staff_grant_recorded_before_the_birth_date_was_known_is_denied_for_a_minor(contact, purpose):
    event = grant(contact, purpose, principal=STAFF)
    minor = update(contact, birth_date=a_minor())

    assert decide(minor, purpose) == (False, "minor_without_guardian", event.pk)


def test_a_contact_of_exactly_the_digital_consent_age_is_not_a_minor(contact, purpose):
    event = grant(contact, purpose, principal=SELF)
    teen = update(contact, birth_date=years_ago(settings.DIGITAL_CONSENT_AGE))

    assert decide(teen, purpose) == (True, "consent", event.pk)


def test_a_contact_one_day_short_of_the_digital_consent_age_is_a_minor(contact, purpose):
    event = grant(contact, purpose, principal=SELF)
    child = update(contact, birth_date=years_ago(settings.DIGITAL_CONSENT_AGE, plus_days=1))

    assert decide(child, purpose) == (False, "minor_without_guardian", event.pk)


# --- rule 6: consent and soft opt-in --------------------------------------------------------


def test_it_allows_a_consent_grant_with_reason_consent_on_the_grant(contact, purpose):
    event = grant(contact, purpose)

    assert decide(contact, purpose) == (True, "consent", event.pk)


def test_it_allows_a_soft_opt_in_for_a_member_with_a_purchase_when_the_opt_out_was_offered(
    buyer, soft_purpose
):
    event = grant(buyer, soft_purpose, basis="soft_opt_in", opt_out_offered=True)

    assert decide(buyer, soft_purpose) == (True, "soft_opt_in", event.pk)


def test_it_denies_a_soft_opt_in_when_the_opt_out_was_not_offered(buyer, soft_purpose):
    event = grant(buyer, soft_purpose, basis="soft_opt_in", opt_out_offered=False)

    assert decide(buyer, soft_purpose) == (False, "soft_opt_in_not_applicable", event.pk)


def test_it_denies_a_soft_opt_in_without_a_purchase_on_record(contact, soft_purpose):
    assert contact.purchase_at is None
    event = grant(contact, soft_purpose, basis="soft_opt_in", opt_out_offered=True)

    assert decide(contact, soft_purpose) == (False, "soft_opt_in_not_applicable", event.pk)


def test_it_denies_a_soft_opt_in_once_the_purpose_no_longer_permits_it(buyer, soft_purpose):
    event = grant(buyer, soft_purpose, basis="soft_opt_in", opt_out_offered=True)
    changed = services.purpose_update(purpose=soft_purpose, allows_soft_opt_in=False)

    assert decide(buyer, changed) == (False, "soft_opt_in_not_applicable", event.pk)


def test_it_denies_a_soft_opt_in_for_a_contact_who_is_now_a_guest(buyer, soft_purpose):
    event = grant(buyer, soft_purpose, basis="soft_opt_in", opt_out_offered=True)
    guest = update(buyer, kind="guest")

    assert decide(guest, soft_purpose) == (False, "soft_opt_in_not_applicable", event.pk)


def test_a_consent_grant_needs_no_purchase_even_on_a_soft_opt_in_purpose(contact, soft_purpose):
    event = grant(contact, soft_purpose, basis="consent")

    assert decide(contact, soft_purpose) == (True, "consent", event.pk)


# --- rule 7: stale notice and expired consent -----------------------------------------------


def test_it_denies_a_grant_to_a_notice_below_the_purposes_minimum_with_reason_stale_notice(contact, purpose):
    event = grant(contact, purpose)
    services.purpose_notice_publish(purpose=purpose, text="A clearer notice, version 2")
    changed = services.purpose_update(purpose=purpose, min_notice_version=2)

    assert decide(contact, changed) == (False, "stale_notice", event.pk)


def test_a_new_grant_to_the_current_notice_refreshes_a_stale_consent(contact, purpose):
    grant(contact, purpose)
    services.purpose_notice_publish(purpose=purpose, text="A clearer notice, version 2")
    changed = services.purpose_update(purpose=purpose, min_notice_version=2)
    fresh = grant(contact, changed)

    assert fresh.pending_confirmation is False
    assert decide(contact, changed) == (True, "consent", fresh.pk)


def test_an_explicit_grant_to_an_old_notice_is_stale_when_the_minimum_is_above_it(contact, purpose):
    services.purpose_notice_publish(purpose=purpose, text="A clearer notice, version 2")
    changed = services.purpose_update(purpose=purpose, min_notice_version=2)
    event = grant(contact, changed, notice_version=1)

    assert decide(contact, changed) == (False, "stale_notice", event.pk)


def test_a_grant_at_the_minimum_notice_version_is_allowed(contact, purpose):
    services.purpose_notice_publish(purpose=purpose, text="A clearer notice, version 2")
    services.purpose_notice_publish(purpose=purpose, text="An even clearer notice, version 3")
    changed = services.purpose_update(purpose=purpose, min_notice_version=2)
    event = grant(contact, changed, notice_version=2)

    assert decide(contact, changed) == (True, "consent", event.pk)


def test_it_denies_a_grant_older_than_the_consent_lifetime_with_reason_consent_expired(contact, make_purpose):
    purpose = make_purpose("yearly", consent_lifetime_days=30)
    event = grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=31))

    assert decide(contact, purpose) == (False, "consent_expired", event.pk)


def test_a_grant_within_the_consent_lifetime_is_allowed(contact, make_purpose):
    purpose = make_purpose("yearly", consent_lifetime_days=30)
    event = grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=29))

    assert decide(contact, purpose) == (True, "consent", event.pk)


def test_the_consent_lifetime_is_counted_up_to_the_decision_time(contact, make_purpose):
    purpose = make_purpose("yearly", consent_lifetime_days=30)
    event = grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=10))

    assert decide(contact, purpose, at=timezone.now() + dt.timedelta(days=19)) == (True, "consent", event.pk)
    assert decide(contact, purpose, at=timezone.now() + dt.timedelta(days=21)) == (
        False,
        "consent_expired",
        event.pk,
    )


def test_setting_a_consent_lifetime_later_expires_old_grants(contact, purpose):
    event = grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=400))
    assert decide(contact, purpose) == (True, "consent", event.pk)

    changed = services.purpose_update(purpose=purpose, consent_lifetime_days=365)

    assert decide(contact, changed) == (False, "consent_expired", event.pk)


def test_a_stale_notice_is_reported_before_an_expired_consent(contact, make_purpose):
    purpose = make_purpose("yearly", consent_lifetime_days=30)
    event = grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=60))
    services.purpose_notice_publish(purpose=purpose, text="A clearer notice, version 2")
    changed = services.purpose_update(purpose=purpose, min_notice_version=2)

    assert decide(contact, changed) == (False, "stale_notice", event.pk)


# --- rule 8 and the guards ------------------------------------------------------------------


def test_it_denies_a_contact_without_any_grant_with_reason_no_consent(contact, purpose):
    assert decide(contact, purpose) == (False, "no_consent", None)


def test_a_grant_for_another_purpose_is_no_consent_for_this_one(contact, purpose, second_purpose):
    grant(contact, second_purpose)

    assert decide(contact, purpose) == (False, "no_consent", None)


def test_a_grant_for_the_other_channel_is_no_consent_for_this_one(contact, purpose):
    grant(contact, purpose, "sms")

    assert decide(contact, purpose, "email") == (False, "no_consent", None)


def test_it_denies_a_pending_grant_with_reason_awaiting_confirmation(contact, purpose):
    pending = grant(contact, purpose, source="web_form", principal=SELF)

    assert decide(contact, purpose) == (False, "awaiting_confirmation", pending.pk)


def test_a_confirmed_grant_is_allowed_on_the_confirmation_event(contact, purpose):
    pending = grant(contact, purpose, source="web_form", principal=SELF)
    confirmation = services.consent_confirm(grant=pending, source="web_form", principal=SELF)

    assert decide(contact, purpose) == (True, "consent", confirmation.pk)


def test_a_pending_regrant_does_not_undo_an_effective_consent(contact, purpose):
    effective = grant(contact, purpose)
    grant(contact, purpose, source="web_form", principal=SELF)

    assert decide(contact, purpose) == (True, "consent", effective.pk)


def test_a_suppression_for_all_marketing_on_a_mobile_denies_sms(contact, purpose, brand):
    grant(contact, purpose, "sms")
    stop, _ = suppress(contact.mobile, "sms_stop", channel="all", brand=brand)

    assert decide(contact, purpose, "sms") == (False, "suppressed:sms_stop", stop.pk)


def test_it_denies_a_contact_without_an_address_for_the_channel_with_reason_no_address(make_contact, purpose):
    contact = make_contact(email=None)

    assert decide(contact, purpose, "email") == (False, "no_address", None)


def test_it_denies_a_channel_the_purpose_does_not_allow_with_reason_channel_not_allowed(
    contact, make_purpose
):
    email_only = make_purpose("email-only", channels=("email",))

    assert decide(contact, email_only, "sms") == (False, "channel_not_allowed", None)


def test_it_denies_a_purpose_of_another_brand_with_reason_channel_not_allowed(
    contact, make_purpose, other_brand
):
    foreign = make_purpose("klinikk-news", brand=other_brand)

    assert decide(contact, foreign, "email") == (False, "channel_not_allowed", None)


# --- precedence between the rules -----------------------------------------------------------


def test_channel_not_allowed_is_decided_before_a_suppression(contact, make_purpose, brand):
    email_only = make_purpose("email-only", channels=("email",))
    suppress(contact.mobile, "sms_stop", channel="sms", brand=brand)

    assert decide(contact, email_only, "sms") == (False, "channel_not_allowed", None)


def test_a_suppression_wins_over_an_objection(contact, purpose, brand):
    grant(contact, purpose)
    bounce, _ = suppress(contact.email, "hard_bounce", brand=brand)
    object_to(contact)

    assert decide(contact, purpose) == (False, "suppressed:hard_bounce", bounce.pk)


def test_an_objection_wins_over_a_restriction(contact, purpose):
    grant(contact, purpose)
    restrict(contact)
    objection = object_to(contact)
    moved = update(contact, email="new-address@example.no")

    assert decide(moved, purpose) == (False, "objection", objection.pk)


def test_an_objection_wins_over_a_later_restriction(contact, purpose):
    grant(contact, purpose)
    objection = object_to(contact)
    restrict(contact)
    moved = update(contact, email="new-address@example.no")

    assert decide(moved, purpose) == (False, "objection", objection.pk)


def test_a_restriction_wins_over_a_withdrawal(contact, purpose):
    grant(contact, purpose)
    withdraw(contact, purpose, "email")
    restriction = restrict(contact)

    assert decide(contact, purpose) == (False, "restricted", restriction.pk)


def test_a_withdrawal_wins_over_the_minor_rule(contact, purpose):
    grant(contact, purpose, principal=SELF)
    minor = update(contact, birth_date=a_minor())
    withdrawal = withdraw(minor, purpose, "email")

    assert decide(minor, purpose) == (False, "withdrawn", withdrawal.pk)


def test_a_withdrawal_wins_over_a_pending_grant(contact, purpose):
    grant(contact, purpose)
    withdrawal = withdraw(contact, purpose, "email")
    grant(contact, purpose, source="web_form", principal=SELF)

    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)


def test_the_minor_rule_wins_over_a_soft_opt_in_that_does_not_apply(make_contact, soft_purpose):
    contact = make_contact()
    event = grant(contact, soft_purpose, basis="soft_opt_in", opt_out_offered=False)
    minor = update(contact, birth_date=a_minor())

    assert decide(minor, soft_purpose) == (False, "minor_without_guardian", event.pk)


def test_the_minor_rule_wins_over_a_stale_notice(contact, purpose):
    event = grant(contact, purpose, principal=SELF)
    minor = update(contact, birth_date=a_minor())
    services.purpose_notice_publish(purpose=purpose, text="A clearer notice, version 2")
    changed = services.purpose_update(purpose=purpose, min_notice_version=2)

    assert decide(minor, changed) == (False, "minor_without_guardian", event.pk)


def test_a_soft_opt_in_that_does_not_apply_wins_over_a_stale_notice(buyer, soft_purpose):
    event = grant(buyer, soft_purpose, basis="soft_opt_in", opt_out_offered=False)
    services.purpose_notice_publish(purpose=soft_purpose, text="A clearer notice, version 2")
    changed = services.purpose_update(purpose=soft_purpose, min_notice_version=2)

    assert decide(buyer, changed) == (False, "soft_opt_in_not_applicable", event.pk)


# --- the `at` parameter ---------------------------------------------------------------------


def test_a_decision_as_of_a_time_before_a_withdrawal_allows_and_after_it_denies(contact, purpose):
    event = grant(contact, purpose)
    withdrawal = withdraw(contact, purpose, "email")

    assert decide(contact, purpose, at=event.recorded_at) == (True, "consent", event.pk)
    assert decide(contact, purpose, at=withdrawal.recorded_at) == (False, "withdrawn", withdrawal.pk)


def test_a_decision_as_of_a_time_before_the_grant_is_no_consent(contact, purpose):
    event = grant(contact, purpose)

    assert decide(contact, purpose, at=event.recorded_at - dt.timedelta(microseconds=1)) == (
        False,
        "no_consent",
        None,
    )


def test_a_decision_as_of_a_time_before_a_channel_wide_withdrawal_ignores_its_suppression(contact, purpose):
    event = grant(contact, purpose)
    withdrawal = withdraw(contact, None, "email")

    assert decide(contact, purpose, at=event.recorded_at) == (True, "consent", event.pk)
    assert decide(contact, purpose, at=withdrawal.recorded_at) == (
        False,
        "suppressed:withdrawn",
        withdrawal.pk,
    )


def test_a_decision_as_of_a_time_before_a_suppression_was_lifted_still_counts_it(contact, purpose, brand):
    event = grant(contact, purpose)
    bounce, _ = suppress(contact.email, "hard_bounce", brand=brand)
    lift = services.suppression_lift(suppression=Suppression.objects.get(), source="admin", principal=STAFF)

    assert decide(contact, purpose, at=bounce.recorded_at) == (False, "suppressed:hard_bounce", bounce.pk)
    assert decide(contact, purpose, at=lift.recorded_at) == (True, "consent", event.pk)


def test_a_decision_as_of_a_time_before_a_backdated_event_was_recorded_ignores_it(contact, purpose):
    event = grant(contact, purpose, occurred_at=timezone.now() - dt.timedelta(days=3))
    before_recording = timezone.now()
    withdrawal = withdraw(contact, purpose, "email", occurred_at=timezone.now() - dt.timedelta(days=1))

    assert decide(contact, purpose, at=before_recording) == (True, "consent", event.pk)
    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)


# --- backdated events -----------------------------------------------------------------------


def test_a_backdated_paper_grant_recorded_after_a_withdrawal_does_not_override_it(contact, purpose):
    now = timezone.now()
    grant(contact, purpose, occurred_at=now - dt.timedelta(days=10))
    withdrawal = withdraw(contact, purpose, "email", occurred_at=now - dt.timedelta(days=5))
    paper = grant(
        contact,
        purpose,
        occurred_at=now - dt.timedelta(days=7),
        evidence=Evidence(proof_sha256="a" * 64),
    )

    assert paper.recorded_at > withdrawal.recorded_at
    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)


def test_a_backdated_paper_grant_does_not_override_a_channel_wide_withdrawal_at_a_new_address(
    contact, purpose
):
    now = timezone.now()
    grant(contact, purpose, occurred_at=now - dt.timedelta(days=10))
    withdrawal = withdraw(contact, None, "email", occurred_at=now - dt.timedelta(days=5))
    moved = update(contact, email="new-address@example.no")
    grant(moved, purpose, occurred_at=now - dt.timedelta(days=7), evidence=Evidence(proof_sha256="b" * 64))

    assert decide(moved, purpose) == (False, "withdrawn", withdrawal.pk)


def test_a_backdated_paper_withdrawal_still_denies_when_it_occurred_after_the_grant(contact, purpose):
    now = timezone.now()
    grant(contact, purpose, occurred_at=now - dt.timedelta(days=10))
    withdrawal = withdraw(contact, purpose, "email", occurred_at=now - dt.timedelta(days=5), principal=STAFF)

    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)


def test_events_are_ordered_by_when_the_person_acted_not_when_they_were_recorded(contact, purpose):
    """A paper withdrawal dated before a later grant is history: the later grant stands."""
    now = timezone.now()
    event = grant(contact, purpose, occurred_at=now - dt.timedelta(days=1))
    withdraw(contact, purpose, "email", occurred_at=now - dt.timedelta(days=5), principal=STAFF)

    assert decide(contact, purpose) == (True, "consent", event.pk)
