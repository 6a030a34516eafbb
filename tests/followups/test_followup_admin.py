"""The admin: marketers create and pause follow-up rules; staff see each person's follow-ups on
the contact's page; the rights audit log is read-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from comms.campaigns.models import CampaignStatus, FollowUp, FollowUpRule
from comms.contacts.services import visit_record
from comms.rights.models import AuditEntry
from comms.rights.services import audit_record


@pytest.fixture
def admin(db: Any) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.no", None))
    return client


def _form(brand: Any, **change: Any) -> dict[str, Any]:
    return {
        "brand": brand.pk,
        "name": "Dag 1",
        "trigger": "trial_visit",
        "delay_hours": 24,
        "inactive_days": "",
        "channel": "sms",
        "purpose_key": "trial-followup",
        "subject": "",
        "text": "Hei {first_name}! Takk for besøket.",
        "html": "",
        **change,
    }


def test_a_marketer_creates_a_rule_in_the_admin_and_bad_input_is_shown_not_saved(admin, brand, trial_purpose):
    add = reverse("admin:campaigns_followuprule_add")
    assert admin.get(add).status_code == 200

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"purpose_key": "nope"}, "purpose_key", "unknown purpose"),
        ({"delay_hours": 24 * 40}, "delay_hours", "within 30 days"),
        ({"text": "Hei {fornavn}"}, "text", "unknown field"),
    ]
    for change, field, message in cases:
        bad = admin.post(add, _form(brand, **change))
        assert bad.status_code == 200
        assert message in " ".join(bad.context["adminform"].form.errors[field])
    assert not FollowUpRule.objects.exists()

    created = admin.post(add, _form(brand))
    assert created.status_code == 302, created.content.decode()[:2000]
    rule = FollowUpRule.objects.get()
    assert (rule.name, rule.delay_hours, rule.campaign.channel, rule.campaign.status) == (
        "Dag 1",
        24,
        "sms",
        CampaignStatus.SENDING,
    )

    change_url = reverse("admin:campaigns_followuprule_change", args=[rule.pk])
    assert admin.get(change_url).status_code == 200
    edited = admin.post(change_url, _form(brand, name="Dagen etter", delay_hours=20))
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert (rule.name, rule.delay_hours, rule.campaign.name) == ("Dagen etter", 20, "Follow-up: Dagen etter")

    changelist = reverse("admin:campaigns_followuprule_changelist")
    admin.post(changelist, {"action": "pause", "_selected_action": [rule.pk]})
    rule.campaign.refresh_from_db()
    assert rule.campaign.status == CampaignStatus.PAUSED
    assert admin.get(changelist).status_code == 200


def test_staff_see_a_guests_followups_on_the_contact_page_and_in_the_list(
    admin, brand, make_contact, trial_purpose
):
    admin.post(reverse("admin:campaigns_followuprule_add"), _form(brand))
    guest = make_contact(kind="guest")
    visit_record(contact=guest, kind="trial_session", occurred_at=timezone.now() - dt.timedelta(hours=1))
    assert FollowUp.objects.filter(contact=guest).count() == 1

    page = admin.get(reverse("admin:contacts_contact_change", args=[guest.pk]))
    assert page.status_code == 200
    assert "planned" in page.content.decode() and "Dag 1" in page.content.decode()
    listing = admin.get(reverse("admin:campaigns_followup_changelist"), {"q": str(guest.pk)})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1


def test_the_rights_audit_log_is_readable_and_read_only_in_the_admin(admin, contact):
    entry = audit_record(actor="api-key:dpo", action="export", contact_id=contact.pk)
    changelist = admin.get(reverse("admin:rights_auditentry_changelist"))
    assert changelist.status_code == 200
    assert changelist.context["has_add_permission"] is False
    assert admin.get(reverse("admin:rights_auditentry_change", args=[entry.pk])).status_code == 200
    assert AuditEntry.objects.count() == 1
