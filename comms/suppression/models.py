"""The ledger: purposes and their notices, append-only consent events, evidence, suppressions.

Only ``comms/suppression/services.py`` writes these tables. The database itself refuses UPDATE
and DELETE on consent events and notices (triggers in migration 0002), and TRUNCATE of every
append-only table (0010); the service role may not bypass them (``comms/core/dbroles.py``).

Longer than 400 lines: the ledger's tables and their database-level guards belong together.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from comms.contacts.models import Brand, Contact

GENESIS_HASH = "0" * 64


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class Action(models.TextChoices):
    GRANT = "grant", "Grant"
    WITHDRAW = "withdraw", "Withdraw"
    OBJECT = "object", "Object (GDPR art. 21)"
    CONFIRM = "confirm", "Confirm (double opt-in)"
    RESTRICT = "restrict", "Restrict processing (art. 18)"
    LIFT_RESTRICTION = "lift_restriction", "Lift restriction"
    SUPPRESS = "suppress", "Suppress address"
    LIFT_SUPPRESSION = "lift_suppression", "Lift suppression"
    ERASE = "erase", "Erase personal data (art. 17)"
    # A change of the contact's personal data (art. 16); ``reason`` names the field, never its value.
    RECTIFY = "rectify", "Rectify personal data (art. 16)"


class Basis(models.TextChoices):
    CONSENT = "consent", "Consent"
    SOFT_OPT_IN = "soft_opt_in", "Soft opt-in (markedsføringsloven § 15(3))"
    CONTRACT = "contract", "Contract"


class Source(models.TextChoices):
    WEB_FORM = "web_form", "Web form"
    FRONT_DESK = "front_desk", "Front desk"
    API = "api", "API"
    IMPORT = "import", "Import"
    ADMIN = "admin", "Admin"
    UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
    ONE_CLICK = "one_click", "One-click unsubscribe"
    PREFERENCE_CENTRE = "preference_centre", "Preference centre"
    SMS_KEYWORD = "sms_keyword", "SMS keyword"
    MAILCHIMP_WEBHOOK = "mailchimp_webhook", "Mailchimp webhook"
    LIFEVISION_WEBHOOK = "lifevision_webhook", "LifeVision webhook"
    RIGHTS_REQUEST = "rights_request", "Rights request"
    # The scheduled retention run (comms/rights): not a person's request.
    RETENTION = "retention", "Retention policy"


class Actor(models.TextChoices):
    SELF = "self", "The person"
    GUARDIAN = "guardian", "Guardian"
    STAFF = "staff", "Staff"
    SYSTEM = "system", "System"


class SuppressionReason(models.TextChoices):
    OBJECTION = "objection", "Objection"
    WITHDRAWN = "withdrawn", "Withdrawn"
    SMS_STOP = "sms_stop", "SMS STOPP"
    COMPLAINT = "complaint", "Spam complaint"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    BLOCKED_RECIPIENT = "blocked_recipient", "Blocked by operator"
    ERASED = "erased", "Erased"
    RESTRICTED = "restricted", "Restricted"


# Suppressions the person caused: only their own consent, confirmed by double opt-in, lifts them.
# An erasure is among them: no import or staff grant can reach an erased address again, but the
# person may sign up anew and confirm it themselves.
PERSON_CAUSED_REASONS = frozenset(
    {
        SuppressionReason.OBJECTION,
        SuppressionReason.WITHDRAWN,
        SuppressionReason.SMS_STOP,
        SuppressionReason.COMPLAINT,
        SuppressionReason.ERASED,
    }
)
# Suppressions staff may clear (the address may work again).
STAFF_LIFTABLE_REASONS = frozenset({SuppressionReason.HARD_BOUNCE, SuppressionReason.BLOCKED_RECIPIENT})


class SuppressionChannel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    ALL = "all", "All marketing"


class Purpose(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="purposes")
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=200)
    allows_email = models.BooleanField(default=True)
    allows_sms = models.BooleanField(default=False)
    allows_soft_opt_in = models.BooleanField(default=False)
    # Marketing purposes accept only consent or soft opt-in; service purposes may rest on contract.
    marketing = models.BooleanField(default=True)
    min_notice_version = models.PositiveIntegerField(null=True, blank=True)
    consent_lifetime_days = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("purpose")
        verbose_name_plural = _("purposes")
        ordering = ["brand__key", "key"]
        constraints = [models.UniqueConstraint(fields=["brand", "key"], name="purpose_unique_key_per_brand")]

    def __str__(self) -> str:
        return f"{self.key} ({self.brand.key})"

    def allows_channel(self, channel: str) -> bool:
        return (channel == Channel.EMAIL and self.allows_email) or (
            channel == Channel.SMS and self.allows_sms
        )

    @property
    def channels(self) -> list[str]:
        return [c for c in (Channel.EMAIL.value, Channel.SMS.value) if self.allows_channel(c)]

    def current_notice(self) -> PurposeNotice | None:
        return self.notices.order_by("-version").first()


class PurposeNotice(models.Model):
    """One version of a purpose's notice text. Never edited: an edit is a new version."""

    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="notices")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("notice version")
        verbose_name_plural = _("notice versions")
        ordering = ["purpose_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["purpose", "version"], name="notice_unique_version"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose.key} v{self.version}"


class ChainHead(models.Model):
    """The last event of one hash chain; its row lock serialises appends to that chain."""

    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("chain head")
        verbose_name_plural = _("chain heads")


# The most chains a ledger may be split into (COMMS_LEDGER_CHAINS).
MAX_CHAINS = 1024


class LedgerLayout(models.Model):
    """How many hash chains the ledger's appends use: a contact's events go to chain (contact id
    mod ``chains``). One row, the only count every writing process follows (read by each append
    under a lock that a change waits for, ``appending.ledger_chains_set``), so two processes can
    never put one contact's events on two chains at once. The release step sets it from
    ``COMMS_LEDGER_CHAINS``; on a database no release has set, the first append records its own."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    chains = models.PositiveIntegerField()
    set_at = models.DateTimeField()
    set_by = models.CharField(max_length=100)

    class Meta:
        verbose_name = _("ledger layout")
        verbose_name_plural = _("ledger layout")
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="ledgerlayout_one_row"),
            models.CheckConstraint(
                condition=Q(chains__gte=1, chains__lte=MAX_CHAINS), name="ledgerlayout_chains_range"
            ),
        ]


class ConsentEvent(models.Model):
    """One consent, withdrawal, objection or other ledger fact. Append-only, hash-chained.

    No personal data lives here: the contact is an id, the address a keyed hash
    (``address_key``), and the evidence sits in ``ConsentEvidence``, covered only by its hash.
    """

    chain = models.PositiveSmallIntegerField(default=0)
    seq = models.BigIntegerField()
    # Every reference below is held by the database without a foreign-key constraint
    # (db_constraint=False; migration 0019): a statement-level trigger refuses an insert that
    # names a row that does not exist, and triggers on the referenced tables refuse to delete
    # (or renumber) a row an event names. A foreign key's per-row check locked the contact,
    # brand, purpose and notice rows of every append, and concurrent appends queued on the
    # shared ones. on_delete=PROTECT still makes the ORM refuse such a delete first.
    # Indexed by event_contact_occurred (contact, occurred_at), which also serves the key.
    contact = models.ForeignKey(
        Contact,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    brand = models.ForeignKey(
        Brand, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False
    )
    # Indexed in Meta where the event has no contact: db_index on a CharField adds a second,
    # LIKE-pattern index that no query uses and every append writes.
    address_key = models.CharField(max_length=64, blank=True)
    # Empty channel: every channel. Empty purpose: every purpose of the channel (and brand).
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    purpose = models.ForeignKey(
        Purpose, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_constraint=False
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    basis = models.CharField(max_length=20, choices=Basis.choices, blank=True)
    source = models.CharField(max_length=30, choices=Source.choices)
    actor = models.CharField(max_length=10, choices=Actor.choices)
    # The optional references are indexed only where set (Meta): most events have none, and a
    # full index would take a NULL entry from every append.
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    actor_contact = models.ForeignKey(
        Contact,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # Name of the API key (or other system principal) that recorded the event.
    recorded_by = models.CharField(max_length=100, blank=True)
    notice = models.ForeignKey(
        PurposeNotice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    confirms = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # A grant that waits for double opt-in before the gate may rely on it.
    pending_confirmation = models.BooleanField(default=False)
    # Soft opt-in: the chance to refuse was offered when the address was collected.
    opt_out_offered = models.BooleanField(default=False)
    # For suppress / lift / erase events: the suppression reason code.
    reason = models.CharField(max_length=30, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField()
    evidence_hash = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)  # not indexed: verify_ledger recomputes it, nothing looks it up

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        ordering = ["chain", "seq"]
        constraints = [
            # One event per place in a chain. The hash chain (each event's hash covers its
            # chain, seq and predecessor's hash) and verify_ledger make any other event at a
            # place, a fork or a copied hash evident; the unique indexes on hash and (chain,
            # prev_hash) that once stood beside this one are gone (migration 0019 says why).
            models.UniqueConstraint(fields=["chain", "seq"], name="event_unique_seq_per_chain"),
        ]
        indexes = [
            models.Index(fields=["contact", "occurred_at"], name="event_contact_occurred"),
            # Only events without a contact are looked up by their address (a person's data
            # export finds a bounce or an SMS stop of their address that way); the others are
            # found by contact, so they take no entry in this random-key index (0022).
            models.Index(fields=["address_key"], name="event_address_key", condition=Q(contact__isnull=True)),
            models.Index(
                fields=["actor_user"], name="event_actor_user", condition=Q(actor_user__isnull=False)
            ),
            models.Index(
                fields=["actor_contact"], name="event_actor_contact", condition=Q(actor_contact__isnull=False)
            ),
            models.Index(fields=["notice"], name="event_notice", condition=Q(notice__isnull=False)),
            models.Index(fields=["confirms"], name="event_confirms", condition=Q(confirms__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.channel or 'all'}/{self.purpose_id or 'all'}"


class ConsentEvidence(models.Model):
    """Evidence of one event. Personal data, so retention and erasure may redact it; the chain
    covers it only through ``ConsentEvent.evidence_hash``."""

    # No foreign-key constraint (migration 0020): a trigger refuses a row whose event does not
    # exist, and events are never deleted.
    event = models.OneToOneField(
        ConsentEvent, on_delete=models.PROTECT, primary_key=True, related_name="evidence", db_constraint=False
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True)
    proof_sha256 = models.CharField(max_length=64, blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("consent evidence")
        verbose_name_plural = _("consent evidence records")


class Suppression(models.Model):
    """An address that must not be messaged in a scope. Keyed by address hash, so it outlives
    the contact's personal data."""

    address_key = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=SuppressionChannel.choices)
    # Empty brand: every brand.
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=30, choices=SuppressionReason.choices)
    source_event = models.ForeignKey(ConsentEvent, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by_event = models.ForeignKey(
        ConsentEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(lifted_at__isnull=True) | Q(lifted_by_event__isnull=False),
                name="suppression_lift_needs_event",
            ),
        ]
        indexes = [
            models.Index(
                fields=["address_key"], condition=Q(lifted_at__isnull=True), name="suppression_active_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.channel} {self.address_key[:10]}…"


class LedgerCheckpoint(models.Model):
    """A periodic hash over every chain head, so parallel chains are still pinned together."""

    created_at = models.DateTimeField()
    heads = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("ledger checkpoint")
        verbose_name_plural = _("ledger checkpoints")
        ordering = ["id"]


class ProofFile(models.Model):
    """An uploaded proof of consent (e.g. a scanned, signed paper form), stored by its SHA-256.

    Events seal only the hash (``ConsentEvidence.proof_sha256``); the file itself is personal
    data that erasure deletes (``deleted_at``) without touching the chain."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=100)
    uploaded_by = models.CharField(max_length=100, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("proof file")
        verbose_name_plural = _("proof files")


class ConsentState(models.Model):
    """The gate's read model of the ledger: what the events of one scope level say now.

    One row per (contact, channel, purpose) the contact has scope events for, where an empty
    channel and no purpose is the contact-wide level (objection, restriction, a withdrawal from
    everything) and a channel without purpose the channel level (a withdrawal from every
    purpose of the channel). Each column pair names the *latest* event of its kind by the
    fold's order (``occurred_at``, ``chain``, ``seq``, written as ``*_order``, a fixed-width
    string, so a backdated event that arrives late still lands in its place). The live gate
    combines the three levels of a scope in SQL (``comms/suppression/gate.py``); the fold over
    events is the reference and ``verify_ledger --state`` compares the two.

    Written only by ``comms/suppression/state.py`` inside the transaction that appends the
    event; a database trigger refuses deletes and any update that moves an order backwards.
    """

    # The contact and purpose without foreign-key constraints (migration 0020): the guard
    # refuses a new row that names no event, and every event it names must be of the row's
    # contact and purpose, which the events' own checks hold (0019: they exist, and a contact or
    # purpose an event names cannot be deleted).
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    channel = models.CharField(max_length=10, blank=True)
    # The event columns are checked by the state's guard trigger (migration 0012), which refuses
    # a write unless the event exists, is of the column's kind and scope and sits at the stored
    # order; events are never deleted, so a foreign key (and its index, which nothing reads)
    # would only add a check and an index write to every append.
    # Indexed by state_purpose_channel (purpose, channel).
    purpose = models.ForeignKey(
        Purpose,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # The latest grant or confirmation that made consent effective, and the grant it rests on
    # (for a confirmation: the grant it confirms), with what the gate's rules read of it.
    positive_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    positive_order = models.CharField(max_length=44, blank=True, default="")
    grant_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    grant_basis = models.CharField(max_length=20, blank=True, default="")
    grant_actor = models.CharField(max_length=10, blank=True, default="")
    grant_actor_contact_id = models.BigIntegerField(null=True, blank=True)
    grant_opt_out_offered = models.BooleanField(default=False)
    grant_notice_version = models.PositiveIntegerField(null=True, blank=True)
    grant_occurred_at = models.DateTimeField(null=True, blank=True)
    # The latest grant that waits for double opt-in.
    pending_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    pending_order = models.CharField(max_length=44, blank=True, default="")
    withdrawal_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    withdrawal_order = models.CharField(max_length=44, blank=True, default="")
    objection_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    objection_order = models.CharField(max_length=44, blank=True, default="")
    # The latest restrict or lift_restriction; ``restricted`` says which it was.
    restriction_event = models.ForeignKey(
        ConsentEvent,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    restriction_order = models.CharField(max_length=44, blank=True, default="")
    restricted = models.BooleanField(default=False)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("consent state")
        verbose_name_plural = _("consent states")
        ordering = ["contact_id", "channel", "purpose_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "channel", "purpose"],
                condition=Q(purpose__isnull=False),
                name="state_unique_scope",
            ),
            models.UniqueConstraint(
                fields=["contact", "channel"],
                condition=Q(purpose__isnull=True),
                name="state_unique_level",
            ),
        ]
        indexes = [models.Index(fields=["purpose", "channel"], name="state_purpose_channel")]

    def __str__(self) -> str:
        return f"state {self.contact_id} {self.channel or 'all'}/{self.purpose_id or 'all'}"


class ConsentImportKey(models.Model):
    """The external key of an imported ledger event, so a re-run of the same import adds
    nothing. Append-only like the events it points at."""

    key = models.CharField(max_length=200)
    # No foreign-key constraint (migration 0020), as the evidence's.
    event = models.OneToOneField(ConsentEvent, on_delete=models.PROTECT, related_name="+", db_constraint=False)
    created_at = models.DateTimeField()

    class Meta:
        # Unique by a constraint, not ``unique=True``: that also builds a LIKE-pattern index,
        # a second random-key index written by every imported row that no query uses.
        constraints = [models.UniqueConstraint(fields=["key"], name="importkey_unique_key")]
        verbose_name = _("consent import key")
        verbose_name_plural = _("consent import keys")
