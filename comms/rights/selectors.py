"""Reads for the rights: the export (arts. 15 and 20) and the communication log.

The export is one JSON document of everything comms holds about a person. "The person's" means:
the contact row and its visits; every ledger event about them, every event they made as a
guardian, and every event with no contact about one of their address keys (a bounce, a STOPP
from a number before it was known); the suppressions of those address keys; every delivery
(message) to them with its decision; the SMS replies to their number; where each provider
stands; and the rights actions about them. Nothing of another contact's is included.

An erased contact can still be exported: the document then shows what remains (the blanked
row, the ledger's proof, the suppressions by keyed hash, the deliveries' decisions).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from comms.campaigns.models import Delivery, FollowUp, Reply
from comms.contacts.models import Contact
from comms.rights.models import AuditEntry
from comms.rights.providers import propagation_status
from comms.suppression.keys import address_key
from comms.suppression.models import Action, Channel, ConsentEvent, ConsentEvidence, Suppression
from comms.suppression.selectors import consent_state

EXPORT_FORMAT = "comms-export/1"


def _profile(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "brand": contact.brand.key,
        "kind": contact.kind,
        "external_id": contact.external_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "birth_date": contact.birth_date,
        "email": contact.email,
        "mobile": contact.mobile,
        "home_centre": contact.home_centre.key if contact.home_centre else None,
        "tags": sorted(tag.name for tag in contact.tags.all()),
        "purchase_at": contact.purchase_at,
        "erased_at": contact.erased_at,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


def _current_keys(contact: Contact) -> set[str]:
    keys = set()
    for channel in Channel.values:
        address = contact.address_for(channel)
        if address:
            keys.add(address_key(channel, address))
    return keys


def person_events(*, contact: Contact) -> list[ConsentEvent]:
    """The person's ledger events (see the module docstring), in the order they happened."""
    own = ConsentEvent.objects.filter(Q(contact=contact) | Q(actor_contact=contact))
    keys = _current_keys(contact) | set(own.exclude(address_key="").values_list("address_key", flat=True))
    keys |= set(
        Delivery.objects.filter(contact=contact).exclude(address_key="").values_list("address_key", flat=True)
    )
    events = ConsentEvent.objects.filter(
        Q(contact=contact) | Q(actor_contact=contact) | Q(contact__isnull=True, address_key__in=keys)
    )
    return list(
        events.select_related("purpose", "notice", "notice__purpose").order_by("occurred_at", "chain", "seq")
    )


def _event(event: ConsentEvent, contact: Contact, evidence: dict[int, ConsentEvidence]) -> dict[str, Any]:
    if event.contact_id == contact.pk:
        role = "subject"
    elif event.actor_contact_id == contact.pk:
        role = "guardian"
    else:
        role = "address"
    proof = evidence.get(event.pk)
    return {
        "id": event.pk,
        "chain": event.chain,
        "seq": event.seq,
        "hash": event.hash,
        "role": role,
        "contact_id": event.contact_id,
        "action": event.action,
        "channel": event.channel,
        "purpose": event.purpose.key if event.purpose else None,
        "basis": event.basis,
        "source": event.source,
        "actor": event.actor,
        "actor_contact_id": event.actor_contact_id,
        "recorded_by": event.recorded_by,
        "reason": event.reason,
        "pending_confirmation": event.pending_confirmation,
        "opt_out_offered": event.opt_out_offered,
        "confirms_event_id": event.confirms_id,
        "address_key": event.address_key,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "notice": (
            {"purpose": event.notice.purpose.key, "version": event.notice.version, "text": event.notice.text}
            if event.notice
            else None
        ),
        "evidence": (
            {
                "ip": proof.ip,
                "user_agent": proof.user_agent,
                "proof_sha256": proof.proof_sha256,
                "redacted_at": proof.redacted_at,
            }
            if proof
            else None
        ),
    }


def _deliveries(contact: Contact) -> list[Delivery]:
    return list(
        Delivery.objects.filter(contact=contact)
        .select_related("campaign", "campaign__purpose")
        .order_by("created_at", "id")
    )


def _message(delivery: Delivery, rules: dict[int, int]) -> dict[str, Any]:
    campaign = delivery.campaign
    return {
        "delivery_id": delivery.pk,
        "kind": "followup" if delivery.pk in rules else "campaign",
        "campaign_id": campaign.pk,
        "campaign": campaign.name,
        "followup_rule_id": rules.get(delivery.pk),
        "channel": delivery.channel,
        "purpose": campaign.purpose.key,
        "provider": campaign.provider,
        "status": delivery.status,
        "reason": delivery.reason,
        "decision_event_id": delivery.decision_event_id,
        "created_at": delivery.created_at,
        "decided_at": delivery.decided_at,
        "deferred_until": delivery.deferred_until,
        "sent_at": delivery.sent_at,
        "delivered_at": delivery.delivered_at,
        "provider_id": delivery.provider_id,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
    }


def _replies(contact: Contact) -> list[dict[str, Any]]:
    if not contact.mobile:
        return []
    return [
        {
            "reply_id": reply.pk,
            "keyword": reply.keyword,
            "text": reply.text,
            "status": reply.status,
            "created_at": reply.created_at,
            "sent_at": reply.sent_at,
            "provider_id": reply.provider_id,
        }
        for reply in Reply.objects.filter(to=contact.mobile).order_by("created_at", "id")
    ]


def contact_messages(*, contact: Contact) -> list[dict[str, Any]]:
    """Every message to the person and the decision on it, in the order they were created."""
    deliveries = _deliveries(contact)
    rules = dict(
        FollowUp.objects.filter(delivery_id__in=[d.pk for d in deliveries]).values_list(
            "delivery_id", "rule_id"
        )
    )
    return [_message(delivery, rules) for delivery in deliveries]


def contact_log(*, contact: Contact) -> dict[str, Any]:
    """The communication log: every message (campaigns, follow-ups, SMS replies) and decision."""
    return {
        "contact_id": contact.pk,
        "generated_at": timezone.now(),
        "messages": contact_messages(contact=contact),
        "replies": _replies(contact),
    }


def contact_export(*, contact: Contact) -> dict[str, Any]:
    """Everything held about the person, as one document (also the art. 20 portability format)."""
    contact = (
        Contact.objects.select_related("brand", "home_centre").prefetch_related("tags").get(pk=contact.pk)
    )
    events = person_events(contact=contact)
    evidence = {
        row.event_id: row for row in ConsentEvidence.objects.filter(event_id__in=[e.pk for e in events])
    }
    keys = {event.address_key for event in events if event.address_key} | _current_keys(contact)
    keys |= set(
        Delivery.objects.filter(contact=contact).exclude(address_key="").values_list("address_key", flat=True)
    )
    restricted = False
    for event in events:
        if event.contact_id == contact.pk and event.action in (Action.RESTRICT, Action.LIFT_RESTRICTION):
            restricted = event.action == Action.RESTRICT
    return {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now(),
        "contact": _profile(contact),
        "guardian": {
            "guardian_id": contact.guardian_id,
            "ward_ids": sorted(contact.wards.values_list("id", flat=True)),
        },
        "visits": [
            {
                "id": visit.pk,
                "kind": visit.kind,
                "occurred_at": visit.occurred_at,
                "centre": visit.centre.key if visit.centre else None,
                "external_id": visit.external_id,
            }
            for visit in contact.visits.select_related("centre").order_by("occurred_at", "id")
        ],
        "restricted": restricted,
        "consent_state": [
            {
                "purpose": state.purpose.key,
                "channel": state.channel,
                "allowed": state.decision.allowed,
                "reason": state.decision.reason,
                "event_id": state.decision.event_id,
            }
            for state in consent_state(contact=contact)
        ],
        "consent_events": [_event(event, contact, evidence) for event in events],
        "suppressions": [
            {
                "id": row.pk,
                "address_key": row.address_key,
                "channel": row.channel,
                "brand": row.brand.key if row.brand else None,
                "reason": row.reason,
                "source_event_id": row.source_event_id,
                "created_at": row.created_at,
                "lifted_at": row.lifted_at,
                "lifted_by_event_id": row.lifted_by_event_id,
            }
            for row in Suppression.objects.filter(address_key__in=keys)
            .select_related("brand")
            .order_by("created_at", "id")
        ],
        "messages": contact_messages(contact=contact),
        "replies": _replies(contact),
        "propagation": propagation_status(contact_id=contact.pk),
        "rights_log": [
            {"at": entry.at, "actor": entry.actor, "action": entry.action, "outcome": entry.outcome}
            for entry in AuditEntry.objects.filter(contact_id=contact.pk).order_by("at", "id")
        ],
    }
