"""The public sign-up: a form per purpose (our page, or embedded on a brand's site) and a JSON
endpoint, both ending here. A sign-up records a grant from ``web_form`` with the exact notice
version shown and the evidence (IP, user agent); the ledger makes it wait for double opt-in,
and one confirmation message goes to the address. Nothing is effective until confirmed.

Bots and floods are kept out without third-party trackers: a honeypot field humans never see,
a signed form token that must be at least ``COMMS_SIGNUP_MIN_SECONDS`` old (and not older than
``COMMS_SIGNUP_FORM_MAX_AGE_HOURS``), and limits per client IP and per address. The answer to
an accepted-looking request is the same whether the address is new, known, already subscribed,
over its own limit, or the request came from a bot: nothing about the address is revealed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from comms.contacts.addresses import normalise_address
from comms.contacts.models import Brand, Contact, ContactKind
from comms.contacts.services import ContactInput, contact_create
from comms.errors import DomainError, InvalidInput
from comms.suppression import services as ledger
from comms.suppression.gate import check
from comms.suppression.keys import address_key
from comms.suppression.models import Basis, Purpose, PurposeNotice, Source
from comms.suppression.services import Evidence, Principal
from comms.web.models import MemberMessageKind
from comms.web.services import lock_contact, queue_member_message, within_limit

PRINCIPAL = Principal(actor="self", recorded_by="signup-form")
FORM_SALT = "comms.web.signup-form"
HONEYPOT_FIELD = "website"


class SignupResult(StrEnum):
    ACCEPTED = "accepted"  # the same answer for new, known and subscribed addresses (and bots)
    INVALID = "invalid"  # not an email address or mobile number
    EXPIRED = "expired"  # the form is too old, forged, or shows a notice no longer accepted
    LIMITED = "limited"  # too many sign-ups from this client


@dataclass(frozen=True)
class SignupForm:
    purpose: Purpose
    notice: PurposeNotice
    token: str


def signup_purpose(*, brand_key: str, purpose_key: str) -> Purpose | None:
    """The purpose a public form signs up for: a marketing purpose of the brand."""
    return (
        Purpose.objects.select_related("brand")
        .filter(brand__key=brand_key[:40], key=purpose_key[:60], marketing=True)
        .first()
    )


def signup_form(*, purpose: Purpose) -> SignupForm:
    """What a form shows: the current notice and a signed token naming it and when it was served."""
    notice = purpose.current_notice()
    if notice is None:
        raise InvalidInput("purpose", "has no notice text")
    payload = {"p": purpose.pk, "v": notice.version, "t": int(timezone.now().timestamp())}
    return SignupForm(purpose, notice, signing.dumps(payload, salt=FORM_SALT))


def _form_version(token: str, purpose: Purpose) -> int | None:
    """The notice version the form showed, or None when the token is forged, for another
    purpose, too old, or too young to be a human's."""
    try:
        payload = signing.loads(token[:500], salt=FORM_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("p") != purpose.pk:
        return None
    served, version = payload.get("t"), payload.get("v")
    if not isinstance(served, int) or not isinstance(version, int):
        return None
    age = timezone.now().timestamp() - served
    if age < settings.SIGNUP_MIN_SECONDS or age > settings.SIGNUP_FORM_MAX_AGE:
        return None
    if purpose.min_notice_version is not None and version < purpose.min_notice_version:
        return None
    return version


def _client(ip: str | None) -> str:
    return hashlib.sha256((ip or "unknown").encode()).hexdigest()[:32]


def signup_request(
    *,
    purpose: Purpose,
    raw_address: str,
    form_token: str,
    honeypot: str,
    evidence: Evidence,
    lang: str,
    first_name: str = "",
) -> SignupResult:
    """Sign ``raw_address`` up for ``purpose``: a pending grant (the notice version the form
    showed, the evidence) and a confirmation message, or nothing when the address is already
    subscribed, waiting, over its limit, or the request is a bot's. See the module docstring."""
    if not within_limit(f"web:signup:ip:{_client(evidence.ip)}", settings.SIGNUP_LIMIT_PER_IP):
        return SignupResult.LIMITED
    if honeypot.strip():
        return SignupResult.ACCEPTED  # a bot: it learns nothing, nothing is written
    version = _form_version(form_token, purpose)
    if version is None:
        return SignupResult.EXPIRED
    raw = raw_address.strip()[:254]
    channel = "email" if "@" in raw else "sms"
    if not purpose.allows_channel(channel):
        return SignupResult.INVALID
    try:
        address = normalise_address(channel, raw)
    except InvalidInput:
        return SignupResult.INVALID
    key = address_key(channel, address)
    if not within_limit(f"web:signup:address:{key[:32]}", settings.SIGNUP_LIMIT_PER_ADDRESS):
        return SignupResult.ACCEPTED
    _signup_record(
        purpose=purpose,
        channel=channel,
        address=address,
        key=key,
        version=version,
        evidence=evidence,
        lang=lang,
        first_name=first_name.strip()[:100],
    )
    return SignupResult.ACCEPTED


def _signup_record(
    *,
    purpose: Purpose,
    channel: str,
    address: str,
    key: str,
    version: int,
    evidence: Evidence,
    lang: str,
    first_name: str,
) -> None:
    brand: Brand = purpose.brand
    lookup = {"email": address} if channel == "email" else {"mobile": address}
    with transaction.atomic():
        contact = Contact.objects.filter(brand=brand, erased_at__isnull=True, **lookup).order_by("pk").first()
        if contact is None:
            # A new person: a lead, whose only basis will be this consent. Erased later if they
            # never confirm or withdraw everything (COMMS_LEAD_WITHDRAWN_GRACE_DAYS).
            data = ContactInput(
                brand=brand.key,
                kind=ContactKind.LEAD,
                first_name=first_name,
                email=address if channel == "email" else None,
                mobile=address if channel == "sms" else None,
            )
            contact = contact_create(data=data)
        lock_contact(contact)
        if check(contact=contact, channel=channel, purpose=purpose, address=address).allowed:
            return  # already subscribed: the same answer, no message
        try:
            with transaction.atomic():
                grant = ledger.consent_grant(
                    contact=contact,
                    channel=channel,
                    purpose=purpose,
                    basis=Basis.CONSENT,
                    source=Source.WEB_FORM,  # always waits for double opt-in
                    principal=PRINCIPAL,
                    notice_version=version,
                    evidence=evidence,
                )
        except DomainError:
            return  # e.g. a minor without their guardian: nothing to confirm, the same answer
        queue_member_message(
            kind=MemberMessageKind.CONFIRM,
            contact=contact,
            channel=channel,
            key=key,
            lang=lang,
            grant_ids=[grant.pk],
        )
