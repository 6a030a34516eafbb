"""LifeVision callbacks: delivery reports and inbound SMS (shared/LIFEVISION_API.md).

The webhook views (``integrations/lifevision/views.py``) verify the signature, validate the body
with ``report_parse`` / ``inbound_parse`` and store it once with ``callback_receive``: the unique
(provider, kind, dedupe_key) of ``CallbackReceipt`` makes LifeVision's at-least-once delivery
harmless. An actor then processes the receipt here, in one transaction that also marks the
receipt processed, so a redelivered broker message changes nothing twice. A receipt whose
message the broker lost is picked up by ``callbacks_sweep``.

Decisions worth knowing:

- A ``STOPP`` from a number that matches no contact still suppresses the number (reason
  ``sms_stop``, for the brand of the number written to, or for every brand on a shared number):
  the person asked not to be messaged, and a later import of that number must not undo it. Like
  every stop by the person, only their own confirmed consent lifts it.
- ``STOPP ALT`` withdraws SMS marketing for every brand's contacts with the number and suppresses
  the number for SMS across all brands. It does not touch email: an SMS keyword speaks for the
  phone it came from.
- The ledger's ``occurred_at`` for keyword events is our clock when we process them, not the
  provider's ``received_at`` (kept in the receipt): the provider's clock has second precision and
  may lag, and a stop must never sort before a grant recorded after the person sent it.
- ``START`` only asks: it records a pending ``sms_keyword`` grant for each SMS purpose the person
  had granted before and replies asking for ``JA``; ``JA`` within 48 hours confirms those grants
  (double opt-in), which also lifts the person's SMS stop for that brand.
- ``START``, ``JA`` and ``HJELP`` from a number we do not know are logged no-ops (no reply).
- Every inbound message gets at most one reply (``Reply.inbound_receipt`` is one-to-one); replies
  are service messages sent by ``comms.campaigns.sending.reply_send``, not through the gate.
- A ``complaint`` suppresses the channel the delivery went out on (email, in practice) for the
  campaign's brand; ``blocked_recipient`` and ``hard_bounce`` suppress the address for every brand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from comms.campaigns.finish import campaign_finish_if_done
from comms.campaigns.models import CallbackReceipt, Delivery, DeliveryStatus, Reply, ReplyStatus
from comms.contacts.addresses import normalise_address, normalise_mobile
from comms.contacts.models import Brand, Contact
from comms.core import jobs
from comms.core.logs import redact
from comms.errors import DomainError, InvalidInput
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import (
    Action,
    Basis,
    Channel,
    ConsentEvent,
    Purpose,
    Source,
    Suppression,
    SuppressionReason,
)

logger = logging.getLogger(__name__)

PROVIDER = "lifevision"
REPORT = "report"
INBOUND = "inbound"

REPORT_STATUSES = ("queued", "sent", "delivered", "failed", "expired", "rejected")
FAILURE_STATUSES = frozenset({"failed", "expired", "rejected"})
BOUNCE_CODES = frozenset({"hard_bounce", "complaint"})
MAX_SEGMENTS = 255
CONFIRM_WINDOW = dt.timedelta(hours=48)
# Receipts older than this are left to an operator rather than retried for ever by the sweep.
SWEEP_HORIZON = dt.timedelta(days=1)

# How far a delivery has come: a report never moves it back (a late "sent" after "delivered").
_RANK: dict[str, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.DEFERRED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.BOUNCED: 4,
}

STOP_WORDS = frozenset({"stopp", "stop", "avmeld", "slutt"})


class Keyword:
    STOP = "stop"
    STOP_ALL = "stop_all"
    START = "start"
    CONFIRM = "confirm"
    HELP = "help"


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    provider_id: str
    external_id: str | None
    status: str
    error_code: str | None
    segment: int
    segments: int
    occurred_at: dt.datetime | None

    @property
    def dedupe_key(self) -> str:
        return f"{self.provider_id}:{self.status}:{self.segment}"


@dataclass(frozen=True)
class Inbound:
    provider_id: str
    from_: str
    to: str
    text: str
    received_at: dt.datetime | None

    @property
    def dedupe_key(self) -> str:
        return self.provider_id


def _object(payload: object) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput("body", "must be a JSON object")
    return payload


def _text(payload: dict[str, Any], name: str, *, max_length: int, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    value = value.strip() if name != "text" else value
    if required and not value and name != "text":
        raise InvalidInput(name, "is required")
    if len(value) > max_length:
        raise InvalidInput(name, f"is longer than {max_length} characters")
    return value


def _count(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEGMENTS:
        raise InvalidInput(name, f"must be a whole number from 1 to {MAX_SEGMENTS}")
    return value


def _moment(payload: dict[str, Any], name: str) -> dt.datetime | None:
    value = payload.get(name)
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
    if parsed is None or timezone.is_naive(parsed):
        raise InvalidInput(name, "must be an ISO 8601 date-time with a time zone")
    return parsed


def report_parse(payload: object) -> Report:
    """Validate a delivery report; raises ``InvalidInput`` naming the first bad field."""
    data = _object(payload)
    provider_id = _text(data, "provider_id", max_length=100)
    status = _text(data, "status", max_length=20)
    if status not in REPORT_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(REPORT_STATUSES)}")
    segment, segments = _count(data, "segment"), _count(data, "segments")
    if segment > segments:
        raise InvalidInput("segment", "is greater than segments")
    assert provider_id is not None
    return Report(
        provider_id=provider_id,
        external_id=_text(data, "external_id", max_length=100, required=False),
        status=status,
        error_code=_text(data, "error_code", max_length=60, required=False) or None,
        segment=segment,
        segments=segments,
        occurred_at=_moment(data, "occurred_at"),
    )


def inbound_parse(payload: object) -> Inbound:
    """Validate an inbound SMS; raises ``InvalidInput`` naming the first bad field."""
    data = _object(payload)
    provider_id = _text(data, "provider_id", max_length=100)
    from_ = _text(data, "from", max_length=32)
    to = _text(data, "to", max_length=20)
    text = _text(data, "text", max_length=2000)
    assert provider_id is not None and from_ is not None and to is not None and text is not None
    return Inbound(
        provider_id=provider_id,
        from_=from_,
        to=to,
        text=text,
        received_at=_moment(data, "received_at"),
    )


# --- receiving ------------------------------------------------------------------------------


def callback_receive(*, kind: str, dedupe_key: str, payload: dict[str, Any]) -> bool:
    """Store one callback and enqueue its processing after commit. False for a duplicate."""
    try:
        with transaction.atomic():
            receipt = CallbackReceipt.objects.create(
                provider=PROVIDER, kind=kind, dedupe_key=dedupe_key, payload=payload
            )
            # robust: if the broker is down the receipt is still stored, and the sweep sends it.
            transaction.on_commit(lambda: _enqueue_receipt(kind, receipt.pk), robust=True)
    except IntegrityError:
        return False
    except DataError:
        # PostgreSQL's jsonb refuses some JSON that Python accepts (\u0000, lone surrogates).
        raise InvalidInput("body", "contains characters that cannot be stored") from None
    return True


def _enqueue_receipt(kind: str, receipt_id: int) -> None:
    if kind == REPORT:
        jobs.enqueue("process_delivery_report", receipt_id)
    elif kind == INBOUND:
        jobs.enqueue("process_inbound_sms", receipt_id)


def _enqueue_reply(reply_id: int) -> None:
    jobs.enqueue("send_reply", reply_id)


def callbacks_sweep(*, older_than: dt.timedelta | None = None) -> dict[str, int]:
    """Re-enqueue receipts and replies the broker may have lost (left unprocessed for a while)."""
    now = timezone.now()
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.SEND_SWEEP_AFTER_SECONDS)
    cutoff = now - older_than
    horizon = now - max(SWEEP_HORIZON, dt.timedelta(seconds=settings.SEND_RETRY_WINDOW))
    receipts = list(
        CallbackReceipt.objects.filter(
            provider=PROVIDER, processed_at__isnull=True, received_at__lte=cutoff, received_at__gte=horizon
        )
        .order_by("received_at")
        .values_list("id", "kind")[:1000]
    )
    for receipt_id, kind in receipts:
        _enqueue_receipt(kind, receipt_id)
    replies = list(
        Reply.objects.filter(status=ReplyStatus.QUEUED, created_at__lte=cutoff, created_at__gte=horizon)
        .order_by("created_at")
        .values_list("id", flat=True)[:1000]
    )
    for reply_id in replies:
        _enqueue_reply(reply_id)
    return {"receipts": len(receipts), "replies": len(replies)}


def _process(receipt_id: int, kind: str, handle: Callable[[CallbackReceipt], str]) -> str:
    """Run ``handle`` once per receipt, under its row lock, and record the outcome with it."""
    with transaction.atomic():
        receipt = CallbackReceipt.objects.select_for_update().filter(pk=receipt_id, kind=kind).first()
        if receipt is None:
            logger.warning("callback receipt %s (%s) not found", receipt_id, kind)
            return "missing"
        if receipt.processed_at is not None:
            return receipt.outcome
        outcome = handle(receipt)
        receipt.processed_at = timezone.now()
        receipt.outcome = outcome[:200]
        receipt.save(update_fields=["processed_at", "outcome"])
    logger.info("callback receipt %s (%s): %s", receipt_id, kind, outcome)
    return outcome


# --- delivery reports -----------------------------------------------------------------------


def delivery_report_process(*, receipt_id: int) -> str:
    """Apply one delivery report to its delivery (and the ledger); returns the outcome."""
    finished: list[int] = []

    def handle(receipt: CallbackReceipt) -> str:
        try:
            report = report_parse(receipt.payload)
        except InvalidInput as exc:
            return f"invalid payload: {exc.field}"
        delivery = _find_delivery(report)
        if delivery is None:
            return "unknown delivery"
        was_pending = delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
        outcome = _apply_report(delivery, report)
        outcome += _report_ledger(delivery, report)
        if was_pending and delivery.status not in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED):
            finished.append(delivery.campaign_id)
        return outcome

    outcome = _process(receipt_id, REPORT, handle)
    if finished:
        campaign_finish_if_done(campaign_id=finished[0])
    return outcome


def _find_delivery(report: Report) -> Delivery | None:
    deliveries = Delivery.objects.select_for_update(of=("self",)).select_related(
        "contact", "campaign", "campaign__brand"
    )
    delivery = deliveries.exclude(provider_id="").filter(provider_id=report.provider_id).first()
    if delivery is None and report.external_id:
        # The send transaction may not have committed the provider id yet: our own id is there.
        try:
            external_id = uuid.UUID(report.external_id)
        except ValueError:
            return None
        delivery = deliveries.filter(external_id=external_id).first()
    return delivery


def _apply_report(delivery: Delivery, report: Report) -> str:
    now = timezone.now()
    at = min(report.occurred_at or now, now)
    old = delivery.status
    if old not in _RANK:  # denied or cancelled: we never handed it over, so keep our record
        logger.warning("delivery %s is %s but got a %s report", delivery.pk, old, report.status)
        return f"report {report.status} for a {old} delivery: status kept"
    fields = {"status"}
    if report.status in ("queued", "sent"):
        target = DeliveryStatus.SENT
        outcome = f"{report.status}"
    elif report.status == "delivered":
        delivery.segments = report.segments
        delivery.segments_delivered += 1
        fields |= {"segments", "segments_delivered"}
        done = delivery.segments_delivered >= delivery.segments
        target = DeliveryStatus.DELIVERED if done else DeliveryStatus.SENT
        outcome = f"delivered {delivery.segments_delivered}/{delivery.segments}"
    else:
        bounced = report.error_code in BOUNCE_CODES
        target = DeliveryStatus.BOUNCED if bounced else DeliveryStatus.FAILED
        outcome = f"{report.status}: {report.error_code or 'no error code'}"
    if _RANK[target] > _RANK[old]:
        delivery.status = target
        if target in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED):
            delivery.last_error = (report.error_code or report.status)[:300]
            fields.add("last_error")
        if delivery.sent_at is None:
            delivery.sent_at = at
            fields.add("sent_at")
        if target == DeliveryStatus.DELIVERED:
            delivery.delivered_at = at
            fields.add("delivered_at")
    elif target != old:
        outcome += f"; status kept {old}"
    if not delivery.provider_id:
        delivery.provider_id = report.provider_id
        fields.add("provider_id")
    delivery.save(update_fields=sorted(fields))
    return outcome


def _report_ledger(delivery: Delivery, report: Report) -> str:
    """An operator block, a hard bounce or a complaint becomes a ledger event and a suppression."""
    code = report.error_code
    channel = delivery.channel
    brand: Brand | None
    if code in (SuppressionReason.BLOCKED_RECIPIENT, SuppressionReason.HARD_BOUNCE):
        brand = None
    elif code == SuppressionReason.COMPLAINT:
        brand = delivery.campaign.brand
    else:
        return ""
    reason = SuppressionReason(code)
    raw = delivery.contact.address_for(channel)
    try:
        address = normalise_address(channel, raw) if raw else None
    except InvalidInput:
        address = None
    if address is None:
        logger.warning("delivery %s: %s but the contact has no %s address left", delivery.pk, code, channel)
        return "; no address to suppress"
    key = address_key(channel, address)
    if delivery.address_key and key != delivery.address_key:
        # The contact changed address since we sent; the new one did not bounce.
        logger.warning("delivery %s: %s for an address the contact no longer has", delivery.pk, code)
        return "; address changed since sending: not suppressed"
    if Suppression.objects.filter(
        address_key=key, channel=channel, brand=brand, reason=reason, lifted_at__isnull=True
    ).exists():
        return f"; already suppressed ({reason})"
    ledger.suppression_add(
        channel=channel,
        address=address,
        reason=reason,
        source=Source.LIFEVISION_WEBHOOK,
        principal=ledger.Principal(actor="system", recorded_by=f"lifevision-report {report.provider_id}"),
        brand=brand,
        contact=delivery.contact,
    )
    return f"; suppressed {reason}"


# --- inbound SMS ----------------------------------------------------------------------------


def keyword_of(text: str) -> str | None:
    """The keyword an inbound text starts with: first word, case-folded, punctuation stripped."""
    words = [w for w in (re.sub(r"[\W_]+", "", raw.casefold()) for raw in text.split()) if w]
    if not words:
        return None
    first = words[0]
    if first in STOP_WORDS:
        return Keyword.STOP_ALL if len(words) > 1 and words[1] == "alt" else Keyword.STOP
    if first == "stoppalt":
        return Keyword.STOP_ALL
    if first == "start":
        return Keyword.START
    if first == "ja":
        return Keyword.CONFIRM
    if first in ("hjelp", "help"):
        return Keyword.HELP
    return None


def inbound_sms_process(*, receipt_id: int) -> str:
    """Act on one inbound SMS keyword and queue its one reply; returns the outcome."""

    def handle(receipt: CallbackReceipt) -> str:
        try:
            inbound = inbound_parse(receipt.payload)
        except InvalidInput as exc:
            return f"invalid payload: {exc.field}"
        outcome, text, keyword, mobile = _inbound(receipt, inbound)
        if text is not None and mobile is not None and keyword is not None:
            reply = Reply.objects.create(
                inbound_receipt=receipt, keyword=keyword, to=mobile, sender=inbound.to, text=text
            )
            transaction.on_commit(lambda: _enqueue_reply(reply.pk), robust=True)
        return outcome

    return _process(receipt_id, INBOUND, handle)


def _names(brands: Iterable[Brand]) -> str:
    names = sorted({brand.name for brand in brands})
    if len(names) <= 1:
        return names[0] if names else "oss"
    return ", ".join(names[:-1]) + " og " + names[-1]


def _inbound(receipt: CallbackReceipt, inbound: Inbound) -> tuple[str, str | None, str | None, str | None]:
    """(outcome, reply text or None, keyword, normalised from-number)."""
    keyword = keyword_of(inbound.text)
    if keyword is None:
        return "no keyword", None, None, None
    try:
        mobile = normalise_mobile(inbound.from_, field="from")
    except InvalidInput:
        logger.info("inbound %s: %s from an invalid number, ignored", inbound.provider_id, keyword)
        return "invalid number", None, None, None
    matched = list(Brand.objects.filter(sms_sender__iexact=inbound.to))
    # A number no brand sends from is shared: its keywords speak for every brand.
    brands = list(Brand.objects.all()) if keyword == Keyword.STOP_ALL or not matched else matched
    contacts = sorted(
        Contact.objects.filter(brand__in=brands, mobile=mobile, erased_at__isnull=True).select_related(
            "brand"
        ),
        key=lambda c: (c.pk % settings.LEDGER_CHAINS, c.pk),  # chain order: fewer lock waits
    )
    context = _Context(inbound=inbound, mobile=mobile, evidence=_evidence(receipt))
    if keyword in (Keyword.STOP, Keyword.STOP_ALL):
        scopes: list[Brand | None] = [None] if keyword == Keyword.STOP_ALL or not matched else list(matched)
        stopped, confirmation = _stop(
            context, keyword, contacts, brands, scopes, always_suppress=keyword == Keyword.STOP_ALL
        )
        return stopped, confirmation, keyword, mobile
    if not contacts:
        logger.info("inbound %s: %s from a number we do not know, ignored", inbound.provider_id, keyword)
        return "unknown number", None, None, None
    if keyword == Keyword.START:
        outcome, text = _start(context, contacts)
    elif keyword == Keyword.CONFIRM:
        outcome, text = _confirm(context, contacts)
    else:
        names = _names(c.brand for c in contacts)
        text = (
            f"{names}: Du får SMS fra oss som medlem eller fordi du har meldt deg på. "
            f"Svar STOPP for å melde deg av, eller STOPP ALT for å melde deg av alle SMS fra oss."
        )
        outcome = "help"
    return outcome, text, keyword, mobile


@dataclass(frozen=True)
class _Context:
    inbound: Inbound
    mobile: str
    evidence: ledger.Evidence

    @property
    def principal(self) -> ledger.Principal:
        return ledger.Principal(actor="self", recorded_by=f"lifevision-inbound {self.inbound.provider_id}")


def _evidence(receipt: CallbackReceipt) -> ledger.Evidence:
    """The SHA-256 of the inbound message as received: the person's own words, as proof."""
    canonical = json.dumps(receipt.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return ledger.Evidence(proof_sha256=hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest())


def _attempt(what: str, call: Callable[[], object]) -> bool:
    """One ledger call in its own savepoint; a refusal (e.g. a minor's consent) is logged, and the
    rest of the message is still handled."""
    try:
        with transaction.atomic():
            call()
    except DomainError as exc:
        logger.warning("inbound keyword: %s refused: %s", what, redact(exc.message))
        return False
    return True


def _stop(
    context: _Context,
    keyword: str,
    contacts: list[Contact],
    brands: list[Brand],
    scopes: list[Brand | None],
    *,
    always_suppress: bool,
) -> tuple[str, str]:
    if always_suppress or not contacts:
        # The number itself, so it is never messaged even if it belongs to no contact (yet).
        for scope in scopes:
            _attempt(
                "suppression",
                partial(
                    ledger.suppression_add,
                    channel=Channel.SMS,
                    address=context.mobile,
                    reason=SuppressionReason.SMS_STOP,
                    source=Source.SMS_KEYWORD,
                    principal=context.principal,
                    brand=scope,
                    evidence=context.evidence,
                ),
            )
    withdrawn = 0
    for contact in contacts:
        withdrawn += _attempt(
            f"withdrawal for contact {contact.pk}",
            partial(
                ledger.consent_withdraw,
                contact=contact,
                channel=Channel.SMS,
                purpose=None,
                source=Source.SMS_KEYWORD,
                principal=context.principal,
                evidence=context.evidence,
                suppression_reason=SuppressionReason.SMS_STOP,
            ),
        )
    names = _names(brands)
    if keyword == Keyword.STOP_ALL:
        text = f"Du er nå meldt av alle SMS fra {names}. Vil du ha SMS igjen, svar START."
    else:
        text = f"Du er nå meldt av SMS fra {names}. Du får ikke flere tilbud på SMS. Angrer du, svar START."
    label = "all brands" if keyword == Keyword.STOP_ALL else ("shared number" if None in scopes else "brand")
    return f"{keyword} ({label}): {withdrawn} contact(s) withdrawn", text


def _start(context: _Context, contacts: list[Contact]) -> tuple[str, str | None]:
    asked: list[Brand] = []
    for contact in contacts:
        granted_before = set(
            ConsentEvent.objects.filter(
                contact=contact, action=Action.GRANT, channel=Channel.SMS, purpose__isnull=False
            ).values_list("purpose_id", flat=True)
        )
        purposes = Purpose.objects.filter(pk__in=granted_before, brand_id=contact.brand_id, allows_sms=True)
        for purpose in purposes.order_by("id"):
            if _attempt(
                f"re-consent for contact {contact.pk}",
                partial(
                    ledger.consent_grant,
                    contact=contact,
                    channel=Channel.SMS,
                    purpose=purpose,
                    basis=Basis.CONSENT,
                    source=Source.SMS_KEYWORD,  # always waits for the JA (double opt-in)
                    principal=context.principal,
                    evidence=context.evidence,
                ),
            ):
                asked.append(contact.brand)
    if not asked:
        return "start: no earlier SMS consent to renew", None
    names = _names(asked)
    text = f"Vil du få SMS fra {names} igjen? Svar JA innen 48 timer for å bekrefte."
    return f"start: {len(asked)} grant(s) awaiting JA", text


def _confirm(context: _Context, contacts: list[Contact]) -> tuple[str, str | None]:
    since = timezone.now() - CONFIRM_WINDOW
    pending = list(
        ConsentEvent.objects.filter(
            contact__in=contacts,
            action=Action.GRANT,
            channel=Channel.SMS,
            source=Source.SMS_KEYWORD,
            pending_confirmation=True,
            recorded_at__gte=since,
        )
        .select_related("contact", "contact__brand", "purpose", "notice")
        .order_by("-recorded_at", "-id")
    )
    confirmed = set(
        ConsentEvent.objects.filter(action=Action.CONFIRM, confirms__in=[g.pk for g in pending]).values_list(
            "confirms_id", flat=True
        )
    )
    seen: set[tuple[int | None, int | None]] = set()
    done: list[Brand] = []
    for grant in pending:  # newest first: one confirmation per (contact, purpose)
        scope = (grant.contact_id, grant.purpose_id)
        if scope in seen or grant.pk in confirmed or _stopped_since(grant):
            continue
        seen.add(scope)
        if _attempt(
            f"confirmation of grant {grant.pk}",
            partial(
                ledger.consent_confirm,
                grant=grant,
                source=Source.SMS_KEYWORD,
                principal=context.principal,
                evidence=context.evidence,
            ),
        ):
            assert grant.contact is not None
            done.append(grant.contact.brand)
    if not done:
        return "confirm: nothing awaiting confirmation", None
    names = _names(done)
    return (
        f"confirm: {len(done)} grant(s) confirmed",
        f"Takk! Du får SMS fra {names} igjen. Svar STOPP for å melde deg av.",
    )


def _stopped_since(grant: ConsentEvent) -> bool:
    """Did the person withdraw or object after this grant? Then a JA must not revive it."""
    if grant.contact_id is None:
        return True
    return (
        ConsentEvent.objects.filter(
            Q(channel="") | Q(channel=Channel.SMS),
            Q(purpose__isnull=True) | Q(purpose_id=grant.purpose_id),
            contact_id=grant.contact_id,
            action__in=[Action.WITHDRAW, Action.OBJECT],
        )
        .filter(
            Q(recorded_at__gt=grant.recorded_at)
            | Q(recorded_at=grant.recorded_at, chain=grant.chain, seq__gt=grant.seq)
        )
        .exists()
    )
