"""Retention: guests who never converted are erased after COMMS_GUEST_RETENTION_DAYS, evidence IPs
are dropped after twelve months, and each run reports (and logs) what it did."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from comms.contacts.models import Contact, Visit
from comms.rights import services
from comms.rights.models import AuditEntry
from comms.rights.tasks import retention_run
from comms.suppression import selectors
from comms.suppression import services as ledger
from comms.suppression.gate import check
from comms.suppression.models import ConsentEvidence, Suppression
from comms.suppression.services import Evidence, Principal

STAFF = Principal(actor="staff", recorded_by="test")
FORM = Evidence(ip="192.0.2.99", user_agent="Mozilla/5.0")


@pytest.fixture
def world(make_contact, purpose, clock):
    """As the ledger stood 400 days ago, and as it stands now."""

    def grant(contact: Contact, **extra: object) -> object:
        return ledger.consent_grant(
            contact=contact, channel="sms", purpose=purpose, basis="consent", source="front_desk", principal=STAFF,
            **extra,  # type: ignore[arg-type]
        )  # fmt: skip

    clock.advance(days=-400)
    stale_guest = make_contact(kind="guest", first_name="Gammel")
    Visit.objects.create(contact=stale_guest, kind="trial_session", occurred_at=timezone.now())
    old_grant = grant(stale_guest, evidence=FORM)
    came_back = make_contact(kind="guest")  # visited again last month
    consented_lately = make_contact(kind="guest")  # signed up for the newsletter last month
    old_member = make_contact(kind="member")
    member_grant = grant(old_member, evidence=FORM)
    clock.advance(days=370)
    Visit.objects.create(contact=came_back, kind="check_in", occurred_at=timezone.now())
    grant(consented_lately)
    recent_guest = make_contact(kind="guest")
    recent_grant = grant(recent_guest, evidence=FORM)
    clock.advance(days=30)
    return {
        "stale_guest": stale_guest,
        "came_back": came_back,
        "consented_lately": consented_lately,
        "old_member": old_member,
        "recent_guest": recent_guest,
        "old_grants": [old_grant, member_grant],
        "recent_grant": recent_grant,
    }


def test_a_dry_run_reports_and_changes_nothing(world):
    out = StringIO()
    call_command("retention", "--dry-run", stdout=out)

    assert "would erase 1 guest(s) without conversion" in out.getvalue()
    assert f": {world['stale_guest'].pk}\n" in out.getvalue()
    assert "would drop the IP address of 2 evidence row(s)" in out.getvalue()
    assert not Contact.objects.filter(erased_at__isnull=False).exists()
    assert ConsentEvidence.objects.filter(ip__isnull=False).count() == 3
    assert not AuditEntry.objects.exists()


def test_retention_erases_stale_guests_drops_old_ips_and_reports(world, purpose):
    out = StringIO()
    call_command("retention", stdout=out)

    assert "erased 1 guest(s) without conversion, inactive since before" in out.getvalue()
    assert "dropped the IP address of 2 evidence row(s)" in out.getvalue()
    stale = Contact.objects.get(pk=world["stale_guest"].pk)
    assert stale.erased_at is not None and stale.first_name == "" and stale.mobile is None
    assert not Visit.objects.filter(contact=stale).exists()
    for name in ("came_back", "consented_lately", "old_member", "recent_guest"):
        assert Contact.objects.get(pk=world[name].pk).erased_at is None, name
    member_evidence = ConsentEvidence.objects.get(event=world["old_grants"][1])
    assert (member_evidence.ip, member_evidence.user_agent) == (None, "Mozilla/5.0")  # the IP only
    assert ConsentEvidence.objects.get(event=world["recent_grant"]).ip == "192.0.2.99"
    assert Suppression.objects.filter(reason="erased").count() == 2
    assert selectors.ledger_verify().ok
    run = AuditEntry.objects.get(action="retention")
    assert (run.actor, run.detail) == (
        "system:retention",
        {"guests_erased": 1, "leads_erased": 0, "evidence_ips_dropped": 2, "errors": 0},
    )
    erasure = AuditEntry.objects.get(action="erase")
    assert (erasure.actor, erasure.contact_id, erasure.detail["source"]) == (
        "system:retention",
        stale.pk,
        "retention",
    )

    # A second run finds nothing left to do; the actor does the same as the command.
    retention_run.fn()
    latest = AuditEntry.objects.filter(action="retention").order_by("id").last()
    assert latest is not None and latest.detail["guests_erased"] == 0


def test_a_reimported_guest_after_retention_is_still_suppressed(world, make_contact, purpose):
    mobile = world["stale_guest"].mobile
    services.retention_run()

    again = make_contact(kind="guest", mobile=mobile)
    ledger.consent_grant(
        contact=again, channel="sms", purpose=purpose, basis="consent", source="front_desk", principal=STAFF
    )
    assert check(contact=again, channel="sms", purpose=purpose).reason == "suppressed:erased"


def test_retention_periods_come_from_the_settings(world, settings):
    settings.GUEST_RETENTION_DAYS = 10
    settings.EVIDENCE_IP_RETENTION_DAYS = 10

    report = services.retention_run(dry_run=True, now=timezone.now() + dt.timedelta(days=1))

    assert sorted(report.guests_erased) == sorted(
        world[name].pk for name in ("stale_guest", "came_back", "consented_lately", "recent_guest")
    )
    assert report.evidence_ips_dropped == 3
