"""Mailchimp as a provider (``comms.campaigns.providers``): it sends newsletters in bulk to a static
segment of the brand's audience, built at send time by the hand-off
(``comms.campaigns.sending.segment_send``); its webhooks come back at ``hooks/mailchimp/``.

What it holds of a person: the audience member. An erasure is pushed like a withdrawal by the
ledger listener (``sync.ledger_event_recorded``): the member is set ``unsubscribed`` (never
permanently deleted, which would destroy Mailchimp's own suppression), by a high-priority actor
retried until Mailchimp has it. The export shows every such push with its status and times.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from django.conf import settings

from comms.campaigns.models import Campaign
from comms.campaigns.providers import Propagation, SegmentSender, SegmentState
from integrations.mailchimp.audiences import audience_for
from integrations.mailchimp.client import MailchimpClient
from integrations.mailchimp.models import CampaignSend
from integrations.mailchimp.sync import propagation_for_contact

NOTE = (
    "Mailchimp keeps the member as unsubscribed (never permanently deleted, which would destroy its "
    "own suppression); the erasure is pushed as an unsubscribe and retried until Mailchimp has it."
)
OFF_NOTE = "not configured: Mailchimp holds nothing from comms"


def _address_of(from_header: str) -> str:
    if "<" in from_header and from_header.endswith(">"):
        return from_header.rsplit("<", 1)[1][:-1]
    return from_header


def _state(send: CampaignSend) -> SegmentState:
    return SegmentState(
        built=bool(send.segment_id),
        sent_at=send.sent_at,
        failing_since=send.failing_since,
        attempts=send.attempts,
        last_error=send.last_error,
    )


class Mailchimp(SegmentSender):
    name: ClassVar[str] = "mailchimp"
    label: ClassVar[str] = "Mailchimp"
    urls: ClassVar[str | None] = "integrations.mailchimp.urls"
    send_actor: ClassVar[str] = "mailchimp_send_campaign"

    def configured(self) -> bool:
        return bool(getattr(settings, "MAILCHIMP_API_KEY", None))

    def holdings(self, *, contact_id: int) -> dict[str, object]:
        return {
            "status": "configured" if self.configured() else "not configured",
            "note": NOTE if self.configured() else OFF_NOTE,
            "messages": [],
            "unsubscribe_pushes": propagation_for_contact(contact_id=contact_id),
        }

    def erasure(self) -> Propagation:
        if self.configured():
            return Propagation(self.name, "unsubscribe_queued", NOTE)
        return Propagation(self.name, "not_configured", OFF_NOTE)

    # --- the segment send ---------------------------------------------------------------------

    def segment_problem(self, campaign: Campaign) -> str | None:
        if audience_for(campaign.brand) is None:
            return f"brand {campaign.brand.key} has no Mailchimp audience (MAILCHIMP_AUDIENCES)"
        return None

    def segment_state(self, campaign: Campaign) -> SegmentState | None:
        send = CampaignSend.objects.filter(campaign=campaign).first()
        return None if send is None else _state(send)

    def segment_snapshot(self, campaign: Campaign, *, snapshot_at: dt.datetime, members: list[list[Any]]) -> None:
        CampaignSend.objects.update_or_create(
            campaign=campaign,
            defaults={"list_id": audience_for(campaign.brand) or "", "snapshot_at": snapshot_at, "members": members},
        )

    def segment_build(self, campaign: Campaign, addresses: list[str]) -> None:
        send = CampaignSend.objects.get(campaign=campaign)
        if send.mailchimp_campaign_id:
            return
        client = MailchimpClient.from_settings()
        list_id = audience_for(campaign.brand) or send.list_id
        client.members_add_new(list_id, addresses)
        send.segment_id = client.segment_create(list_id, f"comms-campaign-{campaign.pk}", addresses)
        send.save(update_fields=["segment_id"])
        send.mailchimp_campaign_id = client.campaign_create(
            list_id,
            send.segment_id,
            subject=campaign.subject,
            title=f"{campaign.name} (comms {campaign.pk})",
            from_name=settings.MAILCHIMP_FROM_NAME or campaign.brand.name,
            reply_to=settings.MAILCHIMP_REPLY_TO or _address_of(campaign.brand.email_from) or "noreply@example.com",
        )
        send.save(update_fields=["mailchimp_campaign_id"])
        client.campaign_set_content(send.mailchimp_campaign_id, html=campaign.html or campaign.text, text=campaign.text)

    def segment_send(self, campaign: Campaign, *, remove: list[str]) -> str:
        send = CampaignSend.objects.get(campaign=campaign)
        client = MailchimpClient.from_settings()
        if remove:
            client.segment_change(send.list_id, send.segment_id, remove=remove)
        client.campaign_send(send.mailchimp_campaign_id)
        return send.mailchimp_campaign_id

    def segment_sent(
        self, campaign: Campaign, *, removed: list[list[Any]], final_diff_at: dt.datetime, sent_at: dt.datetime
    ) -> None:
        CampaignSend.objects.filter(campaign=campaign).update(
            removed=removed, final_diff_at=final_diff_at, sent_at=sent_at
        )

    def segment_failed(self, campaign: Campaign, *, error: str | None, at: dt.datetime) -> SegmentState:
        send = CampaignSend.objects.get(campaign=campaign)
        send.failing_since = send.failing_since or at
        if error is not None:
            send.attempts += 1
            send.last_error = error[:300]
        send.save(update_fields=["failing_since", "attempts", "last_error"])
        return _state(send)

    def segment_retry(self, campaign: Campaign) -> None:
        CampaignSend.objects.filter(campaign=campaign).update(failing_since=None, last_error="")
