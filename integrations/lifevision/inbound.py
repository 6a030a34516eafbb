"""What an SMS a person sends us means: the keywords STOPP, STOPP ALT, START, JA and HJELP.

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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from comms.campaigns.models import CallbackReceipt, Reply
from comms.contacts.addresses import normalise_mobile
from comms.contacts.models import Brand, Contact
from comms.core.logs import redact
from comms.errors import DomainError, InvalidInput
from comms.suppression import services as ledger
from comms.suppression.models import (
    Action,
    Basis,
    Channel,
    ConsentEvent,
    Purpose,
    Source,
    SuppressionReason,
)
from integrations.lifevision.callbacks import (
    INBOUND,
    Inbound,
    enqueue_reply,
    inbound_parse,
    receipt_process,
)

logger = logging.getLogger(__name__)

CONFIRM_WINDOW = dt.timedelta(hours=48)
STOP_WORDS = frozenset({"stopp", "stop", "avmeld", "slutt"})


class Keyword:
    STOP = "stop"
    STOP_ALL = "stop_all"
    START = "start"
    CONFIRM = "confirm"
    HELP = "help"


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
            transaction.on_commit(lambda: enqueue_reply(reply.pk), robust=True)
        return outcome

    return receipt_process(receipt_id, INBOUND, handle)


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
