"""A campaign message as it is handed over: rendered for its contact at hand-off, with the
opt-out every marketing message carries (DESIGN §4): an unsubscribe link and the RFC 8058
headers in an e-mail, "STOPP" or a short link in an SMS."""

from __future__ import annotations

from django.conf import settings

from comms.campaigns.content import render, sms_length, sms_opt_out
from comms.campaigns.models import Campaign, Delivery
from comms.campaigns.providers import OutboundMessage
from comms.links import make_token, short_code_for, short_url, unsubscribe_url


def message_for(campaign: Campaign, delivery: Delivery) -> OutboundMessage:
    """The message of one delivery as the provider receives it, rendered now (never stored). Sets
    the delivery's ``short_code`` and ``segments`` (saved with its decision)."""
    contact = delivery.contact
    brand = campaign.brand
    token = make_token(
        contact_id=contact.pk,
        purpose_id=campaign.purpose_id,
        channel=campaign.channel,
        address_key=delivery.address_key,
    )
    callback = f"{settings.PUBLIC_BASE_URL.rstrip('/')}/hooks/{campaign.provider}/reports"
    tags = [f"campaign:{campaign.pk}"]
    if campaign.channel == "sms":
        sender = settings.LIFEVISION_SMS_SENDER or brand.sms_sender or "comms"
        link = None
        if not sender.isdigit():
            # Derived from the external_id, not random: after a crash between hand-off and commit
            # the retry must record the very link LifeVision already sent (it keeps the first).
            delivery.short_code = delivery.short_code or short_code_for(str(delivery.external_id))
            link = short_url(delivery.short_code)
        text = f"{render(campaign.text, contact)}\n{sms_opt_out(sender, link)}"
        delivery.segments = sms_length(text).segments
        return OutboundMessage(
            external_id=str(delivery.external_id),
            channel="sms",
            to=contact.mobile or "",
            sender=sender,
            text=text,
            callback_url=callback,
            tags=tags,
        )
    url = unsubscribe_url(token)
    footer_text = f"\n\nMeld deg av: {url}"
    footer_html = (
        f'<p style="font-size:12px"><a href="{url}">Meld deg av</a> / <a href="{url}">Unsubscribe</a></p>'
    )
    html = render(campaign.html, contact) if campaign.html else ""
    return OutboundMessage(
        external_id=str(delivery.external_id),
        channel="email",
        to=contact.email or "",
        sender=brand.email_from or brand.name,
        subject=render(campaign.subject, contact),
        text=render(campaign.text, contact) + footer_text,
        html=(html + footer_html) if html else None,
        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        callback_url=callback,
        tags=tags,
    )
