"""What a campaign's message will look like, composed by the send path's own composer for a
sample recipient, so the preview is the message, opt-out line, footer and headers included."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from comms.campaigns.compose import message_for
from comms.campaigns.content import FIELDS, sms_length
from comms.campaigns.models import Campaign, Delivery
from comms.campaigns.providers import OutboundMessage
from comms.contacts.models import Contact

MERGE_FIELDS = tuple("{" + name + "}" for name in FIELDS)


@dataclass
class MessagePreview:
    channel: str
    message: OutboundMessage
    characters: int = 0
    segments: int = 0
    encoding: str = ""
    opt_out_line: str = ""
    warnings: list[str] = field(default_factory=list)


def sample_contact(campaign: Campaign) -> Contact:
    centre = campaign.brand.centres.order_by("key").first()
    # Never saved; id 0 makes the sample's unsubscribe link read like a real one (it leads nowhere).
    return Contact(
        pk=0,
        brand=campaign.brand,
        kind="member",
        first_name="Kari",
        last_name="Nordmann",
        email="kari.nordmann@example.no",
        mobile="+4741234567",
        home_centre=centre,
    )


def message_preview(*, campaign: Campaign, contact: Contact | None = None) -> MessagePreview:
    """The message for ``contact`` (a sample member by default). Writes nothing."""
    contact = contact or sample_contact(campaign)
    delivery = Delivery(campaign=campaign, contact=contact, channel=campaign.channel, external_id=uuid.uuid4())
    message = message_for(campaign, delivery)
    preview = MessagePreview(channel=campaign.channel, message=message)
    if campaign.channel == "sms":
        length = sms_length(message.text)
        preview.characters, preview.segments, preview.encoding = length.units, length.segments, length.encoding
        preview.opt_out_line = message.text.rsplit("\n", 1)[-1]
        if length.segments > campaign.sms_max_segments:
            preview.warnings.append(
                _("The SMS is %(segments)s segments; the limit is %(limit)s.")
                % {"segments": length.segments, "limit": campaign.sms_max_segments}
            )
        if length.encoding == "ucs2":
            preview.warnings.append(
                _("The text has characters outside the GSM alphabet (e.g. emoji): a segment holds 70 characters.")
            )
    else:
        if not campaign.subject.strip():
            preview.warnings.append(_("The e-mail has no subject."))
        if not campaign.html.strip():
            preview.warnings.append(_("The e-mail has no HTML part; it is sent as plain text only."))
    if not campaign.text.strip():
        preview.warnings.append(_("The message has no text."))
    return preview


def sms_sender(campaign: Campaign) -> str:
    return settings.LIFEVISION_SMS_SENDER or campaign.brand.sms_sender or "comms"
