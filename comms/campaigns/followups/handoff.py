"""A follow-up's own stop rules, applied by the send path at hand-off (before the gate).

``comms.campaigns.sending`` calls ``followup_stops`` on every batch it is about to decide; for an
ordinary campaign's deliveries it finds no follow-up and changes nothing. The same rules run in
the follow-ups tick so staff see a stop as soon as it happens, not only when the message was due.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from django.db.models import Max

from comms.campaigns.models import Delivery, DeliveryStatus, FollowUp, FollowUpTrigger
from comms.contacts.models import Contact, ContactKind, Visit

# The reason a follow-up carries while it waits for its due time (status ``deferred``).
PLANNED = "planned"


class StopReason(StrEnum):
    CONVERTED = "converted"  # the trial guest (or lead) became a member
    NOT_A_MEMBER = "not_a_member"  # a lapsed member's follow-up, but they are no longer a member
    VISITED_AGAIN = "visited_again"  # the lapsed member came back before the follow-up went out
    OUTSIDE_WINDOW = "outside_window"  # COMMS_FOLLOWUP_WINDOW_DAYS after the visit have passed


def stop_reasons(
    followups: Iterable[FollowUp], contacts: Mapping[int, Contact], now: datetime
) -> dict[int, str]:
    """The stop reason per follow-up id, for those that must not go out ``now``. What the
    person did (conversion, a new visit) is named before the window, which is only time."""
    followups = list(followups)
    lapsed = [f.contact_id for f in followups if f.rule.trigger == FollowUpTrigger.NO_VISIT]
    last_visit: dict[int, datetime] = {}
    if lapsed:
        rows = (
            Visit.objects.filter(contact_id__in=lapsed)
            .values("contact_id")
            .annotate(last=Max("occurred_at"))
            .values_list("contact_id", "last")
        )
        last_visit = dict(rows)
    reasons: dict[int, str] = {}
    for followup in followups:
        contact = contacts[followup.contact_id]
        trigger = followup.rule.trigger
        reason: str | None = None
        if trigger == FollowUpTrigger.TRIAL_VISIT and contact.kind == ContactKind.MEMBER:
            reason = StopReason.CONVERTED
        elif trigger == FollowUpTrigger.NO_VISIT:
            if contact.kind != ContactKind.MEMBER:
                reason = StopReason.NOT_A_MEMBER
            elif followup.visit is not None and last_visit.get(contact.pk, followup.visit.occurred_at) > (
                followup.visit.occurred_at
            ):
                reason = StopReason.VISITED_AGAIN
        if reason is None and now >= followup.window_ends_at:
            reason = StopReason.OUTSIDE_WINDOW
        if reason is not None:
            reasons[followup.pk] = str(reason)
    return reasons


def followup_stops(deliveries: Sequence[Delivery], now: datetime) -> list[Delivery]:
    """Mark the follow-ups among ``deliveries`` that their rules stop as ``denied`` with the
    reason (not saved: the caller saves its batch) and return them. Contacts come from the
    deliveries (the send path has them loaded)."""
    if not deliveries:
        return []
    followups = list(
        FollowUp.objects.filter(delivery_id__in=[d.pk for d in deliveries]).select_related("rule", "visit")
    )
    if not followups:
        return []
    by_delivery = {followup.delivery_id: followup for followup in followups}
    reasons = stop_reasons(followups, {d.contact_id: d.contact for d in deliveries}, now)
    stopped = []
    for delivery in deliveries:
        followup = by_delivery.get(delivery.pk)
        reason = reasons.get(followup.pk) if followup is not None else None
        if reason is not None:
            delivery.status = DeliveryStatus.DENIED
            delivery.reason = reason
            delivery.decided_at = now
            stopped.append(delivery)
    return stopped
