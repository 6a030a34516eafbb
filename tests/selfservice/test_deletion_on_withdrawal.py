"""Deletion on withdrawal: a lead whose only basis was consent and who has withdrawn every
consent is erased after the grace period, keeping the suppression; a member is not."""

from __future__ import annotations

from comms.contacts.models import Contact
from comms.rights import services
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import Suppression

STAFF = ledger.Principal(actor="staff", recorded_by="test")
SELF = ledger.Principal(actor="self", recorded_by="test")


def subscribe_then_withdraw(contact, purpose):
    for channel in ("email", "sms"):
        ledger.consent_grant(
            contact=contact,
            channel=channel,
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=STAFF,
        )
    ledger.consent_withdraw(
        contact=contact, channel=None, purpose=None, source="preference_centre", principal=SELF
    )


def test_a_lead_who_withdrew_everything_is_erased_after_the_grace_period_a_member_is_not(
    make_contact, purpose, clock, settings
):
    settings.LEAD_WITHDRAWN_GRACE_DAYS = 30
    lead = make_contact(kind="lead", email="lead@example.no")
    member = make_contact(kind="member", email="member@example.no")
    still_subscribed = make_contact(kind="lead", email="keen@example.no")
    subscribe_then_withdraw(lead, purpose)
    subscribe_then_withdraw(member, purpose)
    ledger.consent_grant(
        contact=still_subscribed,
        channel="email",
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=STAFF,
    )

    clock.advance(days=29)
    assert services.retention_run().leads_erased == []  # within the grace period

    clock.advance(days=2)
    report = services.retention_run()

    assert report.leads_erased == [lead.pk]
    assert "erased 1 lead(s)" in report.summary()
    lead.refresh_from_db()
    member.refresh_from_db()
    assert lead.erased_at is not None and lead.email is None
    assert member.erased_at is None and member.email == "member@example.no"
    assert Contact.objects.get(pk=still_subscribed.pk).erased_at is None
    # The suppression survives: the address can never be messaged again by a later import.
    assert Suppression.objects.filter(source_event__contact=lead, reason="erased").exists()
    again = make_contact(kind="lead", email="lead@example.no")
    ledger.consent_grant(
        contact=again, channel="email", purpose=purpose, basis="consent", source="front_desk", principal=STAFF
    )
    assert gate.check(contact=again, channel="email", purpose=purpose).reason.startswith("suppressed:")


def test_a_dry_run_lists_the_lead_and_erases_nothing(make_contact, purpose, clock, settings):
    settings.LEAD_WITHDRAWN_GRACE_DAYS = 0
    lead = make_contact(kind="lead")
    subscribe_then_withdraw(lead, purpose)
    clock.advance(seconds=5)
    assert services.retention_run(dry_run=True).leads_erased == [lead.pk]
    lead.refresh_from_db()
    assert lead.erased_at is None
