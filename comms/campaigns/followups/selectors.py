"""Reads for follow-ups: the rules, and per person what is planned, what went out and why not."""

from __future__ import annotations

from django.db.models import QuerySet

from comms.campaigns.models import FollowUp, FollowUpRule
from comms.contacts.models import Contact
from comms.errors import NotFound


def followup_rule_get(*, rule_id: int) -> FollowUpRule:
    rule = (
        FollowUpRule.objects.select_related("brand", "campaign", "campaign__purpose")
        .filter(pk=rule_id)
        .first()
    )
    if rule is None:
        raise NotFound(f"follow-up rule {rule_id} not found")
    return rule


def followup_rule_list(*, brand: str | None = None) -> QuerySet[FollowUpRule]:
    rules = FollowUpRule.objects.select_related("brand", "campaign", "campaign__purpose").order_by("id")
    return rules.filter(brand__key=brand) if brand else rules


def contact_followups(*, contact: Contact) -> QuerySet[FollowUp]:
    """Every follow-up of the person, by due time: planned ones are ``deferred`` with the reason
    ``planned``; decided ones carry the gate's or the rule's reason on their delivery."""
    return (
        FollowUp.objects.filter(contact=contact)
        .select_related("rule", "delivery", "delivery__campaign", "delivery__campaign__purpose")
        .order_by("due_at", "id")
    )
