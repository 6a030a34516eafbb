"""Follow-ups: rules, planning at a visit (or a member's lapse), and stopping.

Why a follow-up is a Delivery of a per-rule campaign. Each ``FollowUpRule`` owns one ordinary
``Campaign`` (brand, channel, purpose, content, provider), created with the rule and kept in the
``sending`` state while the rule is active (``paused`` when it is not). A planned follow-up is a
``Delivery`` of that campaign, ``deferred`` until its due time with the reason ``planned``, plus a
``FollowUp`` row naming the rule, the visit and the window. So:

- there is still ONE send path: the minute tick (``campaigns_tick``) enqueues due deliveries of
  every sending campaign, and ``comms.campaigns.sending`` decides them under the sender's lock
  with the same gate, quiet hours and frequency cap as any campaign. It only learned to apply a
  follow-up's own stops first (``handoff.followup_stops``: ``converted``, ``outside_window``, …)
  and never to finish or start a rule's campaign;
- the unique (campaign, contact, channel) constraint is untouched and now also means: a rule
  follows a person up at most once. A second trial visit does not repeat the sequence, and a
  duplicate visit import or a retry can never double a message. A lapsed-member rule likewise
  reaches each member once; to nudge again later, add a rule with a longer lapse;
- the campaign's counts by status and reason, its deliveries and the delivery callbacks work
  for follow-ups as they do for campaigns.

The alternative, deliveries with a nullable campaign, would have put a second shape through the
send path, the callbacks and every campaign query; this one changes three guards.

Rules of timing: a follow-up is due ``delay_hours`` after its trigger moment (the visit, or for
``no_visit`` the moment a member reached ``inactive_days`` without one) and may go out only until
``COMMS_FOLLOWUP_WINDOW_DAYS`` after that moment. A visit recorded after the window has closed
plans nothing. Soft opt-in never reaches a guest (the gate refuses it), so a guest's follow-up
needs their consent to the rule's purpose.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from comms.campaigns import services as campaigns
from comms.campaigns.followups.handoff import PLANNED, stop_reasons
from comms.campaigns.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    FollowUp,
    FollowUpRule,
    FollowUpTrigger,
)
from comms.contacts.models import Brand, Contact, ContactKind, Visit, VisitKind
from comms.errors import Conflict, InvalidInput

VISIT_TRIGGERS = {
    VisitKind.TRIAL_SESSION: FollowUpTrigger.TRIAL_VISIT,
    VisitKind.CLASS_BOOKING: FollowUpTrigger.CLASS_BOOKING,
}
# The contact kinds each trigger follows up (the campaign's audience says the same, for reading).
TRIGGER_KINDS = {
    FollowUpTrigger.TRIAL_VISIT: [ContactKind.GUEST, ContactKind.LEAD],
    FollowUpTrigger.CLASS_BOOKING: [ContactKind.MEMBER, ContactKind.GUEST, ContactKind.LEAD],
    FollowUpTrigger.NO_VISIT: [ContactKind.MEMBER],
}
MAX_NAME = 150
MAX_INACTIVE_DAYS = 3650


def window() -> dt.timedelta:
    return dt.timedelta(days=settings.FOLLOWUP_WINDOW_DAYS)


@dataclass
class FollowUpRuleInput:
    """A rule as given by the API or the admin; None means "not given" (on update: unchanged)."""

    name: str | None = None
    trigger: str | None = None
    delay_hours: int | None = None
    inactive_days: int | None = None
    channel: str | None = None
    purpose: str | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    sms_max_segments: int | None = None
    active: bool | None = None


def _check_timing(trigger: str, delay_hours: int, inactive_days: int | None) -> None:
    if trigger not in FollowUpTrigger.values:
        raise InvalidInput("trigger", f"must be one of {', '.join(FollowUpTrigger.values)}")
    limit = settings.FOLLOWUP_WINDOW_DAYS * 24
    if not 0 <= delay_hours < limit:
        raise InvalidInput(
            "delay_hours",
            f"must be from 0 to {limit - 1}: a follow-up goes out within "
            f"{settings.FOLLOWUP_WINDOW_DAYS} days (COMMS_FOLLOWUP_WINDOW_DAYS) of its trigger",
        )
    if trigger == FollowUpTrigger.NO_VISIT:
        if inactive_days is None or not 1 <= inactive_days <= MAX_INACTIVE_DAYS:
            raise InvalidInput(
                "inactive_days", f"a no_visit rule needs the days without a visit (1–{MAX_INACTIVE_DAYS})"
            )
    elif inactive_days is not None:
        raise InvalidInput("inactive_days", "only a no_visit rule counts days without a visit")


def _check_name(name: str | None) -> str:
    text = (name or "").strip()
    if not text:
        raise InvalidInput("name", "a rule needs a name")
    if len(text) > MAX_NAME:
        raise InvalidInput("name", f"is longer than {MAX_NAME} characters")
    return text


def _campaign_input(data: FollowUpRuleInput, *, name: str | None, trigger: str) -> campaigns.CampaignInput:
    return campaigns.CampaignInput(
        name=f"Follow-up: {name}" if name is not None else None,
        channel=data.channel,
        purpose=data.purpose,
        audience={"kinds": [str(kind) for kind in TRIGGER_KINDS[FollowUpTrigger(trigger)]]},
        subject=data.subject,
        html=data.html,
        text=data.text,
        sms_max_segments=data.sms_max_segments,
    )


def followup_rule_validate(
    *, brand: Brand, data: FollowUpRuleInput, existing: FollowUpRule | None = None
) -> None:
    """Check a rule's input without saving anything (the admin form uses this); raises
    ``InvalidInput`` naming the first bad field."""
    if existing is None:
        name = _check_name(data.name)
        if data.trigger is None:
            raise InvalidInput("trigger", f"is required: one of {', '.join(FollowUpTrigger.values)}")
        if data.delay_hours is None:
            raise InvalidInput("delay_hours", "is required")
        _check_timing(data.trigger, data.delay_hours, data.inactive_days)
        campaigns.campaign_validate(brand=brand, data=_campaign_input(data, name=name, trigger=data.trigger))
        return
    if data.trigger is not None and data.trigger != existing.trigger:
        raise InvalidInput("trigger", "a rule's trigger cannot change; create another rule")
    if data.channel is not None and data.channel != existing.campaign.channel:
        raise InvalidInput("channel", "a rule's channel cannot change; create another rule")
    new_name = _check_name(data.name) if data.name is not None else None
    _check_timing(
        existing.trigger,
        data.delay_hours if data.delay_hours is not None else existing.delay_hours,
        data.inactive_days if data.inactive_days is not None else existing.inactive_days,
    )
    content = _campaign_input(data, name=new_name, trigger=existing.trigger)
    content.channel = None
    campaigns.campaign_validate(brand=brand, data=content, existing=existing.campaign)


def followup_rule_create(*, brand: Brand, data: FollowUpRuleInput, created_by: str = "") -> FollowUpRule:
    """Create a rule and its campaign in one transaction; active (``sending``) unless told not."""
    followup_rule_validate(brand=brand, data=data)
    name = _check_name(data.name)
    assert data.trigger is not None and data.delay_hours is not None
    with transaction.atomic():
        campaign = campaigns.campaign_create(
            brand=brand, data=_campaign_input(data, name=name, trigger=data.trigger), created_by=created_by
        )
        now = timezone.now()
        campaign.status = CampaignStatus.SENDING if data.active is not False else CampaignStatus.PAUSED
        # Started, so that resuming a paused rule never runs the campaign's audience start.
        campaign.send_at = campaign.started_at = now
        campaign.save(update_fields=["status", "send_at", "started_at", "updated_at"])
        return FollowUpRule.objects.create(
            brand=brand,
            name=name,
            trigger=data.trigger,
            delay_hours=data.delay_hours,
            inactive_days=data.inactive_days,
            campaign=campaign,
            created_by=created_by[:100],
        )


def followup_rule_update(*, rule: FollowUpRule, data: FollowUpRuleInput) -> FollowUpRule:
    """Change a rule's name, timing, content or activity. Its trigger and channel stay (they
    decide what its deliveries already are): make a new rule instead."""
    followup_rule_validate(brand=rule.brand, data=data, existing=rule)
    with transaction.atomic():
        locked = FollowUpRule.objects.select_for_update().get(pk=rule.pk)
        campaign = (
            Campaign.objects.select_for_update().select_related("brand", "purpose").get(pk=locked.campaign_id)
        )
        if campaign.status not in (CampaignStatus.SENDING, CampaignStatus.PAUSED):
            raise Conflict(f"the rule's campaign is {campaign.status}: create another rule")
        if data.name is not None:
            locked.name = _check_name(data.name)
        if data.delay_hours is not None:
            locked.delay_hours = data.delay_hours
        if data.inactive_days is not None:
            locked.inactive_days = data.inactive_days
        _check_timing(locked.trigger, locked.delay_hours, locked.inactive_days)
        content = _campaign_input(
            data, name=locked.name if data.name is not None else None, trigger=locked.trigger
        )
        content.channel = None
        # The same validation as any campaign's edit (purpose of the brand, template fields, length).
        campaigns._apply(campaign, content)
        campaign.save()
        locked.save()
    if data.active is True and campaign.status == CampaignStatus.PAUSED:
        campaigns.campaign_resume(campaign=campaign)
    elif data.active is False and campaign.status == CampaignStatus.SENDING:
        campaigns.campaign_pause(campaign=campaign)
    return FollowUpRule.objects.select_related("brand", "campaign", "campaign__purpose").get(pk=rule.pk)


# --- planning -------------------------------------------------------------------------------


def _plan(
    *, rule: FollowUpRule, contact: Contact, visit: Visit | None, anchor: dt.datetime, now: dt.datetime
) -> FollowUp | None:
    """Plan one follow-up: a deferred Delivery of the rule's campaign and its FollowUp row.
    None when its window has already closed or the rule already followed this person up."""
    window_ends = anchor + window()
    if window_ends <= now:
        return None
    if Delivery.objects.filter(campaign_id=rule.campaign_id, contact=contact).exists():
        return None
    due = anchor + dt.timedelta(hours=rule.delay_hours)
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                campaign_id=rule.campaign_id,
                contact=contact,
                channel=rule.campaign.channel,
                status=DeliveryStatus.DEFERRED,
                deferred_until=due,
                reason=PLANNED,
                external_id=uuid.uuid4(),
            )
    except IntegrityError:
        return None  # a concurrent visit planned it first: once per rule and person
    return FollowUp.objects.create(
        delivery=delivery,
        rule=rule,
        contact=contact,
        visit=visit,
        anchor_at=anchor,
        due_at=due,
        window_ends_at=window_ends,
    )


def followups_plan_for_visit(*, visit: Visit) -> list[FollowUp]:
    """Plan what the brand's active rules say about this visit (a trial session, a class
    booking). Runs in the transaction that records the visit, so a rolled-back visit plans nothing."""
    trigger = VISIT_TRIGGERS.get(VisitKind(visit.kind))
    contact = visit.contact
    if trigger is None or contact.erased_at is not None or contact.kind not in TRIGGER_KINDS[trigger]:
        return []
    rules = FollowUpRule.objects.filter(
        brand_id=contact.brand_id, trigger=trigger, campaign__status=CampaignStatus.SENDING
    ).select_related("campaign")
    now = timezone.now()
    planned = []
    with transaction.atomic():
        for rule in rules.order_by("id"):
            followup = _plan(rule=rule, contact=contact, visit=visit, anchor=visit.occurred_at, now=now)
            if followup is not None:
                planned.append(followup)
    return planned


def followups_plan_lapsed(*, now: dt.datetime | None = None) -> int:
    """Plan the ``no_visit`` rules: members whose last visit was ``inactive_days`` ago (and whose
    window since then is still open). Members who never visited have no lapse to measure."""
    now = now or timezone.now()
    planned = 0
    rules = FollowUpRule.objects.filter(
        trigger=FollowUpTrigger.NO_VISIT, campaign__status=CampaignStatus.SENDING
    ).select_related("campaign")
    for rule in rules.order_by("id"):
        assert rule.inactive_days is not None  # the check constraint holds it
        lapse = dt.timedelta(days=rule.inactive_days)
        members = (
            Contact.objects.filter(brand_id=rule.brand_id, kind=ContactKind.MEMBER, erased_at__isnull=True)
            .annotate(last_visit=Max("visits__occurred_at"))
            .filter(last_visit__lte=now - lapse, last_visit__gt=now - lapse - window())
            .exclude(deliveries__campaign_id=rule.campaign_id)
            .order_by("id")
        )
        for contact in members.iterator(chunk_size=500):
            with transaction.atomic():
                visit = Visit.objects.filter(contact=contact).order_by("-occurred_at", "-id").first()
                if visit is None:
                    continue
                anchor = visit.occurred_at + lapse
                if _plan(rule=rule, contact=contact, visit=visit, anchor=anchor, now=now) is not None:
                    planned += 1
    return planned


# --- stopping -------------------------------------------------------------------------------


def followups_stop_due(*, now: dt.datetime | None = None) -> int:
    """Record the stop of every waiting follow-up whose rule now stops it (the guest converted,
    the window closed, the member came back), so staff see it at once. The send path applies the
    same rules at hand-off, so this is about what staff see, not about what is sent."""
    now = now or timezone.now()
    with transaction.atomic():
        waiting = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(followup__isnull=False, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED])
            .filter(
                Q(followup__window_ends_at__lte=now)
                | Q(followup__rule__trigger=FollowUpTrigger.TRIAL_VISIT, contact__kind=ContactKind.MEMBER)
                | Q(followup__rule__trigger=FollowUpTrigger.NO_VISIT)
            )
            .select_related("contact", "followup", "followup__rule", "followup__visit")
        )
        if not waiting:
            return 0
        reasons = stop_reasons(
            [delivery.followup for delivery in waiting], {d.contact_id: d.contact for d in waiting}, now
        )
        stopped = []
        for delivery in waiting:
            reason = reasons.get(delivery.followup.pk)
            if reason is not None:
                delivery.status, delivery.reason, delivery.decided_at = DeliveryStatus.DENIED, reason, now
                stopped.append(delivery)
        Delivery.objects.bulk_update(stopped, ["status", "reason", "decided_at"])
    return len(stopped)


def followups_tick() -> dict[str, int]:
    """Every few minutes: plan lapsed members' follow-ups and record the stops. Sending the due
    ones is the campaign tick's job (each rule's campaign is a sending campaign)."""
    return {"planned": followups_plan_lapsed(), "stopped": followups_stop_due()}
