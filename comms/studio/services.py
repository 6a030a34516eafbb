"""Studio writes. Campaign changes go through ``comms.campaigns.services``; the one write of
its own is the test send."""

from __future__ import annotations

import dataclasses
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from comms.campaigns.models import Campaign, Provider
from comms.campaigns.sending import Held, studio_test_send
from comms.contacts.addresses import normalise_address
from comms.contacts.models import Brand
from comms.core.logs import redact
from comms.errors import InvalidInput
from comms.studio.access import MARKETER_GROUP, STUDIO_GROUPS
from comms.studio.models import BrandAccess, TestSend, TestSendStatus
from comms.studio.preview import message_preview, sample_contact
from integrations.errors import IntegrationError

logger = logging.getLogger(__name__)
TEST_PREFIX = "[TEST] "


def studio_user_upsert(
    *, username: str, password: str, email: str = "", brands: list[Brand], group: str = MARKETER_GROUP
) -> AbstractBaseUser:
    """A Django user in a studio group with access to ``brands`` (created, or its password, group
    and brands set again)."""
    if group not in STUDIO_GROUPS:
        raise InvalidInput("group", f"must be one of {', '.join(STUDIO_GROUPS)}")
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model.objects.create_user(username=username, email=email, password=password)
        else:
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get_or_create(name=group)[0])
        BrandAccess.objects.filter(user=user).exclude(brand__in=brands).delete()
        for brand in brands:
            BrandAccess.objects.get_or_create(user=user, brand=brand)
    return user


def _staff_emails() -> set[str]:
    users = get_user_model().objects.filter(is_active=True).exclude(email="")
    users = users.filter(groups__name__in=STUDIO_GROUPS) | users.filter(is_superuser=True)
    return {email.strip().lower() for email in users.values_list("email", flat=True)}


def recipient_is_staff(channel: str, address: str) -> bool:
    """Only staff receive test sends: an address in ``COMMS_STUDIO_TEST_RECIPIENTS`` (exact, or
    ``@domain`` for e-mail), or the e-mail of a studio user. A test send is not gated, so it must
    never become a way to message members."""
    allowed = {entry.strip().lower() for entry in settings.STUDIO_TEST_RECIPIENTS if entry.strip()}
    if address.lower() in allowed:
        return True
    if channel == "email":
        domain = "@" + address.rsplit("@", 1)[-1].lower()
        return domain in allowed or address.lower() in _staff_emails()
    return False


def campaign_test_send(*, campaign: Campaign, recipients: list[str], sent_by: str) -> list[TestSend]:
    """Send the campaign's message now to staff addresses, marked as a test, through the
    hand-off every message takes (``comms.campaigns.sending.studio_test_send``: the provider's
    admission, but not the gate, which is for members). Each is a ``TestSend`` row,
    never a ``Delivery``: it counts for nothing. Raises ``InvalidInput`` for a bad or non-staff
    address before anything is sent."""
    if campaign.provider != Provider.LIFEVISION:
        raise InvalidInput("recipients", "test sends go through LifeVision; this campaign uses Mailchimp")
    addresses = []
    for raw in recipients:
        address = normalise_address(campaign.channel, raw, field="recipients")
        if not recipient_is_staff(campaign.channel, address):
            raise InvalidInput("recipients", f"{raw} is not a staff address (COMMS_STUDIO_TEST_RECIPIENTS)")
        addresses.append(address)
    rows = []
    for address in addresses:
        row = TestSend(campaign=campaign, channel=campaign.channel, to=address, sent_by=sent_by[:150])
        contact = sample_contact(campaign)
        if campaign.channel == "email":
            contact.email = address
        else:
            contact.mobile = address
        message = message_preview(campaign=campaign, contact=contact).message
        message = dataclasses.replace(
            message,
            external_id=str(row.external_id),
            subject=TEST_PREFIX + (message.subject or "") if campaign.channel == "email" else None,
            text=message.text if campaign.channel == "email" else TEST_PREFIX + message.text,
            callback_url=None,
            tags=["test-send", f"test-campaign:{campaign.pk}"],
        )
        try:
            result = studio_test_send(campaign.provider, message)
        except IntegrationError as exc:
            row.status, row.error = TestSendStatus.FAILED, exc.message[:300]
        except Held as held:  # an open circuit, a 429's pause or the shared rate limit
            row.status, row.error = TestSendStatus.FAILED, str(held)[:300]
        else:
            if result.status == "accepted":
                row.status, row.provider_id = TestSendStatus.SENT, result.provider_id or ""
            else:
                row.status, row.error = TestSendStatus.FAILED, f"rejected: {result.error_code or 'unknown'}"
        with transaction.atomic():
            row.save()
        if row.status == TestSendStatus.FAILED:
            logger.warning("test send %s of campaign %s failed: %s", row.pk, campaign.pk, redact(row.error))
        rows.append(row)
    logger.info("test send of campaign %s: %s message(s) at %s", campaign.pk, len(rows), timezone.now())
    return rows
