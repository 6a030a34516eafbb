"""The member pages' service messages: composed at hand-off time (the link in them is made then,
so no usable link is ever stored) and handed over through the hand-off's service path."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils.html import escape, linebreaks

from comms.campaigns.providers import OutboundMessage
from comms.campaigns.sending import RetryLater, service_message_send
from comms.core.logs import redact
from comms.links import (
    confirm_url,
    make_confirm_token,
    make_rights_token,
    make_token,
    preferences_url,
    rights_url,
)
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent
from comms.web.models import MemberMessage, MemberMessageKind, MemberMessageStatus
from comms.web.texts import channel_name, names_list, text

logger = logging.getLogger(__name__)


def member_message_compose(message: MemberMessage) -> OutboundMessage | None:
    """The message as LifeVision receives it, or None when the contact no longer has the address
    it was meant for (changed or erased since): it must never reach someone else."""
    contact = message.contact
    address = contact.address_for(message.channel) if contact.erased_at is None else None
    if not address or address_key(message.channel, address) != message.address_key:
        return None
    brand = contact.brand
    lang = message.lang
    if message.kind == MemberMessageKind.CONFIRM:
        names = list(
            ConsentEvent.objects.filter(pk__in=message.grant_ids)
            .order_by("purpose__name")
            .values_list("purpose__name", flat=True)
        )
        url = confirm_url(make_confirm_token(grant_ids=[int(g) for g in message.grant_ids]))
        values = {
            "brand": brand.name,
            "names": names_list([n for n in names if n], lang),
            "channel": channel_name(message.channel, lang),
            "url": url,
            "hours": settings.MEMBER_CONFIRM_MAX_AGE // 3600,
        }
        subject_key, mail_key, sms_key = "mail_confirm_subject", "mail_confirm_text", "sms_confirm_text"
    elif message.kind == MemberMessageKind.RIGHTS:
        token = make_rights_token(
            contact_id=contact.pk, channel=message.channel, address_key=message.address_key
        )
        url = rights_url(token)
        values = {"brand": brand.name, "url": url, "hours": settings.RIGHTS_LINK_MAX_AGE // 3600}
        subject_key, mail_key, sms_key = "mail_rights_subject", "mail_rights_text", "sms_rights_text"
    else:
        token = make_token(
            contact_id=contact.pk, purpose_id=0, channel=message.channel, address_key=message.address_key
        )
        url = preferences_url(token)
        values = {"brand": brand.name, "url": url}
        subject_key, mail_key, sms_key = "mail_link_subject", "mail_link_text", "sms_link_text"
    if lang == "en":
        url = f"{url}?lang=en"
        values["url"] = url
    tags = [f"member:{message.kind}"]
    if message.channel == "sms":
        return OutboundMessage(
            external_id=str(message.external_id),
            channel="sms",
            to=address,
            sender=settings.LIFEVISION_SMS_SENDER or brand.sms_sender or "comms",
            text=text(sms_key, lang, **values),
            tags=tags,
        )
    body = text(mail_key, lang, **values)
    html = linebreaks(escape(body)).replace(escape(url), f'<a href="{escape(url)}">{escape(url)}</a>')
    return OutboundMessage(
        external_id=str(message.external_id),
        channel="email",
        to=address,
        sender=brand.email_from or brand.name,
        subject=text(subject_key, lang, **values),
        text=body,
        html=html,
        tags=tags,
    )


def member_message_send(*, message_id: int) -> str:
    """Hand one queued member message over, through the hand-off's service path (no marketing
    gate: see ``comms.campaigns.sending``). Raises ``RetryLater`` when it must be tried again
    (after recording the attempt); the retry reuses the message's ``external_id``, so the
    provider never sends it twice. A message whose address changed since is cancelled."""
    retry: RetryLater | None = None
    with transaction.atomic():
        row = (
            MemberMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contact", "contact__brand")
            .filter(pk=message_id, status=MemberMessageStatus.QUEUED)
            .first()
        )
        if row is None:
            return "nothing to send"
        message = member_message_compose(row)
        if message is None:
            row.status = MemberMessageStatus.CANCELLED
        else:
            retry = service_message_send(row, message)
        row.save(update_fields=["status", "provider_id", "sent_at", "attempts", "last_error"])
    if retry is not None:
        raise retry
    if row.status == MemberMessageStatus.FAILED:
        logger.warning("member message %s failed for good: %s", row.pk, redact(row.last_error))
    return str(row.status)
