"""The bulk consent import: many grants and withdrawals from a member system, checked row by
row as the single services check them, appended many per transaction under the chain heads'
locks and idempotent by the source's own key (``consents_import``). ``bin/manage
import_consents`` and ``POST /api/v1/consents/import`` call it.

Longer than 400 lines: one row's checks, the chunking and the parallel split belong together.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.errors import Conflict, InvalidInput
from comms.suppression import append, bulk
from comms.suppression.appending import (
    CLOCK_SKEW,
    Evidence,
    NewEvent,
    Principal,
    append_many,
    chain_for,
    ledger_chains,
    lock_for_append,
)
from comms.suppression.locks import withdrawal_lock
from comms.suppression.models import (
    Action,
    Basis,
    Channel,
    ConsentImportKey,
    Purpose,
    PurposeNotice,
    Source,
    SuppressionReason,
)
from comms.suppression.rules import (
    CHANNELS,
    DOUBLE_OPT_IN_SOURCES,
    check_live,
    check_source,
    contact_keys,
    grant_validate,
    on_postgres,
    person_suppressed,
    suppress,
)
from comms.suppression.state import (
    STATE_FIELDS,
    advance,
    scope_blocked,
    state_levels,
)

# --- bulk import of consents ---------------------------------------------------------------


@dataclass(frozen=True)
class ConsentImportRow:
    """One row of a consent import: a grant (or a withdrawal) recorded elsewhere, keyed by the
    source system's own id for the fact (``external_key``) so a re-run adds nothing."""

    external_key: str
    channel: str
    purpose: str
    occurred_at: datetime | None
    contact_id: int | None = None
    brand: str = ""
    contact_external_id: str = ""
    action: str = Action.GRANT
    basis: str = Basis.CONSENT
    source: str = Source.IMPORT
    notice_version: int | None = None
    opt_out_offered: bool = False
    evidence: Evidence | None = None


@dataclass(frozen=True)
class ConsentImportError:
    index: int
    external_key: str
    field: str
    message: str


@dataclass
class ConsentImportResult:
    created: int = 0
    unchanged: int = 0
    errors: list[ConsentImportError] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    # The row index of each of ``event_ids`` (merging the results of parallel workers).
    event_indexes: list[int] = field(default_factory=list, repr=False)


IMPORT_ACTIONS = (Action.GRANT, Action.WITHDRAW)
_CONTACT_UNUSED = ("created_at", "updated_at")
IMPORT_CHUNK = 1000


def consents_import(
    *,
    rows: Sequence[ConsentImportRow],
    principal: Principal,
    start_index: int = 0,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ConsentImportResult:
    """Append many consents in one transaction per chunk of ``IMPORT_CHUNK`` rows, under the
    chain heads' locks, hash-chained as single appends are. Each row is checked as
    ``consent_grant`` / ``consent_withdraw`` check theirs; a bad row is reported (index, field)
    and writes nothing, the good rows are kept. A row whose ``external_key`` is already in the
    ledger is left alone (``unchanged``), so a re-run of the same file adds nothing; a key that
    appears twice in ``rows`` is an error the second time. A grant after the person withdrew or
    objected waits for their double opt-in, exactly as one grant would; withdrawals take the
    address lock that orders them against senders.

    With several ledger chains (``COMMS_LEDGER_CHAINS``) on PostgreSQL, outside a transaction,
    the rows are split by their contact's chain over ``workers`` threads
    (``COMMS_IMPORT_WORKERS``), each with its own connection and chains: no two lock the same
    head, and each contact's rows stay in their order. ``progress`` is called with the number
    of rows done after each chunk."""
    indexed = list(enumerate(rows, start=start_index))
    result = ConsentImportResult()
    duplicates = _import_duplicates(indexed)
    for index, row in duplicates:
        result.errors.append(
            ConsentImportError(index, row.external_key, "external_key", "appears twice in this import")
        )
    if duplicates:
        dropped = {index for index, _ in duplicates}
        indexed = [(index, row) for index, row in indexed if index not in dropped]
        if progress is not None:
            progress(len(duplicates))
    workers = settings.IMPORT_WORKERS if workers is None else workers
    parallel = (
        workers > 1
        and ledger_chains() > 1
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and len(indexed) > IMPORT_CHUNK
    )
    if not parallel:
        _import_rows(indexed, principal, result, progress)
    else:
        parts = _import_partitions(indexed, workers)
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="consents-import") as pool:
            futures = [pool.submit(_import_rows_thread, part, principal, progress) for part in parts]
            for future in futures:
                part_result = future.result()  # a worker's exception is this call's
                result.created += part_result.created
                result.unchanged += part_result.unchanged
                result.errors.extend(part_result.errors)
                result.event_ids.extend(part_result.event_ids)
                result.event_indexes.extend(part_result.event_indexes)
        order = sorted(range(len(result.event_ids)), key=result.event_indexes.__getitem__)
        result.event_ids = [result.event_ids[i] for i in order]
        result.event_indexes = [result.event_indexes[i] for i in order]
    result.errors.sort(key=lambda error: error.index)
    return result


def _import_duplicates(indexed: Sequence[tuple[int, ConsentImportRow]]) -> list[tuple[int, ConsentImportRow]]:
    seen: set[str] = set()
    duplicates = []
    for index, row in indexed:
        if not row.external_key:
            continue
        if row.external_key in seen:
            duplicates.append((index, row))
        seen.add(row.external_key)
    return duplicates


def _import_rows(
    indexed: Sequence[tuple[int, ConsentImportRow]],
    principal: Principal,
    result: ConsentImportResult,
    progress: Callable[[int], None] | None,
) -> None:
    for offset in range(0, len(indexed), IMPORT_CHUNK):
        chunk = indexed[offset : offset + IMPORT_CHUNK]
        with transaction.atomic():
            _import_chunk(chunk, principal, result)
        if progress is not None:
            progress(len(chunk))


def _import_rows_thread(
    indexed: Sequence[tuple[int, ConsentImportRow]],
    principal: Principal,
    progress: Callable[[int], None] | None,
) -> ConsentImportResult:
    """One parallel worker: its own connection (Django's are per thread), closed at the end."""
    result = ConsentImportResult()
    try:
        _import_rows(indexed, principal, result, progress)
    finally:
        connection.close()
    return result


def _import_partitions(
    indexed: Sequence[tuple[int, ConsentImportRow]], workers: int
) -> list[list[tuple[int, ConsentImportRow]]]:
    """The rows split by their contact's chain (chain mod ``workers``), each part in the rows'
    order. A row naming no known contact goes to the first part (it is reported there)."""
    wanted: dict[str, set[str]] = {}
    for _, row in indexed:
        if row.contact_id is None and row.brand and row.contact_external_id:
            wanted.setdefault(row.brand, set()).add(row.contact_external_id)
    external: dict[tuple[str, str], int] = {}
    for brand_key, external_ids in wanted.items():
        for external_id, contact_id in Contact.objects.filter(
            brand__key=brand_key, external_id__in=list(external_ids)
        ).values_list("external_id", "pk"):
            assert external_id is not None
            external[(brand_key, external_id)] = contact_id
    chains = ledger_chains()
    count = min(workers, chains)
    parts: list[list[tuple[int, ConsentImportRow]]] = [[] for _ in range(count)]
    for index, row in indexed:
        known = (
            row.contact_id
            if row.contact_id is not None
            else external.get((row.brand, row.contact_external_id))
        )
        parts[chain_for(known, chains) % count if known is not None else 0].append((index, row))
    return [part for part in parts if part]


def _import_contacts(
    chunk: Sequence[ConsentImportRow],
) -> tuple[dict[int, Contact], dict[tuple[str, str], Contact]]:
    ids = {row.contact_id for row in chunk if row.contact_id is not None}
    # One Brand instance per brand, not one per contact (select_related builds one per row).
    brands: dict[int, Brand] = {}

    def with_brand(contact: Contact) -> Contact:
        brand = brands.get(contact.brand_id)
        if brand is None:
            brand = brands[contact.brand_id] = Brand.objects.get(pk=contact.brand_id)
        Contact.brand.field.set_cached_value(contact, brand)
        return contact

    if connection.vendor == "postgresql":  # one array, not a thousand parameters to compile
        # The contact's own timestamps play no part in a consent (loaded if ever read).
        found = bulk.select_rows(
            Contact, "id = ANY(%s::bigint[])", [sorted(ids)], prepare=False, defer=_CONTACT_UNUSED
        )
    else:
        found = list(Contact.objects.filter(pk__in=ids))
    by_id = {c.id: with_brand(c) for c in found}
    external = {(row.brand, row.contact_external_id) for row in chunk if row.contact_id is None}
    by_external: dict[tuple[str, str], Contact] = {}
    if external:
        query = Q()
        for brand_key, external_id in external:
            query |= Q(brand__key=brand_key, external_id=external_id)
        for contact in Contact.objects.filter(query):
            assert contact.external_id is not None
            by_external[(with_brand(contact).brand.key, contact.external_id)] = contact
    return by_id, by_external


def _import_chunk(
    indexed: Sequence[tuple[int, ConsentImportRow]], principal: Principal, result: ConsentImportResult
) -> None:
    chunk = [row for _, row in indexed]
    keys = [row.external_key for row in chunk if row.external_key]
    if connection.vendor == "postgresql":  # one array, not a thousand literals to parse
        known = {
            key
            for (key,) in bulk.run(
                "SELECT key FROM suppression_consentimportkey WHERE key = ANY(%s::text[])",
                [keys],
                prepare=False,
            )
        }
    else:
        known = set(ConsentImportKey.objects.filter(key__in=keys).values_list("key", flat=True))
    by_id, by_external = _import_contacts(chunk)
    purposes: dict[tuple[int, str], Purpose | None] = {}
    notices: dict[tuple[int, int | None], PurposeNotice | None] = {}
    prepared: list[tuple[int, ConsentImportRow, Contact, Purpose | None, PurposeNotice | None, str]] = []
    seen_keys: set[str] = set()
    latest = timezone.now() + CLOCK_SKEW  # an occurred_at past this lies in the future
    for index, row in indexed:
        try:
            if not row.external_key or len(row.external_key) > 200:
                raise InvalidInput("external_key", "is required (at most 200 characters)")
            if row.external_key in known:
                result.unchanged += 1
                continue
            if row.external_key in seen_keys:
                raise InvalidInput("external_key", "appears twice in this import")
            if row.action not in IMPORT_ACTIONS:
                raise InvalidInput("action", "must be grant or withdraw")
            if row.occurred_at is None:
                raise InvalidInput("occurred_at", "is required: when the person gave or withdrew consent")
            if row.contact_id is not None:
                contact = by_id.get(row.contact_id)
                if contact is None:
                    raise InvalidInput("contact_id", f"unknown contact {row.contact_id}")
            else:
                if not row.brand or not row.contact_external_id:
                    raise InvalidInput(
                        "contact_id", "name the contact by contact_id or brand + contact_external_id"
                    )
                found = by_external.get((row.brand, row.contact_external_id))
                if found is None:
                    raise InvalidInput(
                        "contact_external_id",
                        f"no contact {row.contact_external_id!r} in brand {row.brand!r}",
                    )
                contact = found
            purpose: Purpose | None = None
            if row.purpose:
                if (contact.brand_id, row.purpose) not in purposes:
                    purposes[(contact.brand_id, row.purpose)] = Purpose.objects.filter(
                        brand_id=contact.brand_id, key=row.purpose
                    ).first()
                purpose = purposes[(contact.brand_id, row.purpose)]
                if purpose is None:
                    raise InvalidInput("purpose", f"unknown purpose {row.purpose!r} for the contact's brand")
            if row.action == Action.GRANT:
                if purpose is None:
                    raise InvalidInput("purpose", "a grant names its purpose")
                notice, key = grant_validate(
                    contact=contact,
                    channel=row.channel,
                    purpose=purpose,
                    basis=row.basis,
                    source=row.source,
                    principal=principal,
                    notice_version=row.notice_version,
                    occurred_at=row.occurred_at,
                    notices=notices,
                )
            else:
                check_source(row.source)
                check_live(contact)
                if row.channel not in CHANNELS:
                    raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
                notice, key = None, contact_keys(contact, [row.channel]).get(row.channel, "")
            if row.occurred_at > latest:
                raise InvalidInput("occurred_at", "lies in the future")
        except (InvalidInput, Conflict) as exc:
            field_name = exc.field if isinstance(exc, InvalidInput) else "contact_id"
            result.errors.append(ConsentImportError(index, row.external_key, field_name or "", exc.message))
            continue
        seen_keys.add(row.external_key)
        prepared.append((index, row, contact, purpose, notice, key))
    if not prepared:
        return

    # Withdrawals are ordered against senders by the exclusive address lock, as one would be.
    # Whether a grant must wait for double opt-in depends on what came before it, read under the
    # chain heads' locks, and on this chunk's earlier rows: a copy of the state is advanced row
    # by row, as appends would.
    withdrawing = [key for _, row, _, _, _, key in prepared if row.action == Action.WITHDRAW]
    # Only a contact with several rows in the chunk needs the copy advanced (most have one).
    repeated = {pk for pk, n in Counter(c.id for _, _, c, _, _, _ in prepared).items() if n > 1}
    locked: append.Locked | None = None
    suppressed: set[tuple[str, str]] = set()
    if on_postgres():
        locked = lock_for_append(
            [contact for _, _, contact, _, _, _ in prepared],
            events=len(prepared),
            address_locks=withdrawing,
            suppression_keys=[key for _, row, _, _, _, key in prepared if row.action == Action.GRANT],
        )
        # Copies where this chunk's own rows advance them (the append advances the stored rows).
        levels: dict[Any, Any] = {
            level: copy.copy(row) if level[0] in repeated else row for level, row in locked.levels.items()
        }
        for _, row, contact, _, _, key in prepared:
            if locked.person_suppressed(key=key, channel=row.channel, brand_id=contact.brand_id):
                suppressed.add((row.channel, key))
    else:
        withdrawal_lock(withdrawing)
        levels = state_levels({contact.id for _, _, contact, _, _, _ in prepared})
        for brand_id, channel in {(c.brand_id, r.channel) for _, r, c, _, _, _ in prepared}:
            keys = [k for _, r, c, _, _, k in prepared if c.brand_id == brand_id and r.channel == channel]
            suppressed |= {
                (channel, k) for k in person_suppressed(brand_id=brand_id, channel=channel, keys=keys)
            }
    chains = locked.chains if locked is not None else ledger_chains()
    specs: list[NewEvent] = []
    for _, row, contact, purpose, notice, key in prepared:
        if row.action == Action.GRANT:
            assert purpose is not None
            pending = (
                row.source in DOUBLE_OPT_IN_SOURCES
                or (row.channel, key) in suppressed
                or scope_blocked(levels, contact.id, row.channel, purpose.id)
            )
            spec = NewEvent(
                action=Action.GRANT,
                source=row.source,
                principal=principal,
                contact=contact,
                key=key,
                channel=row.channel,
                purpose=purpose,
                basis=row.basis,
                notice=notice,
                pending_confirmation=pending,
                opt_out_offered=row.opt_out_offered,
                occurred_at=row.occurred_at,
                evidence=row.evidence,
            )
        else:
            spec = NewEvent(
                action=Action.WITHDRAW,
                source=row.source,
                principal=principal,
                contact=contact,
                key=key,
                channel=row.channel,
                purpose=purpose,
                occurred_at=row.occurred_at,
                evidence=row.evidence,
            )
            if purpose is None and key:
                suppressed.add((row.channel, key))
        specs.append(spec)
        if contact.id in repeated:
            _advance_copy(levels, spec, chains)
    events = append_many(specs, locked=locked)
    for (_, row, contact, purpose, _, key), event in zip(prepared, events, strict=True):
        if row.action == Action.WITHDRAW and purpose is None and key:
            suppress(
                key=key,
                channel=row.channel,
                brand=contact.brand,
                reason=SuppressionReason.WITHDRAWN,
                event=event,
            )
    now = timezone.now()
    if connection.vendor == "postgresql":  # no model instance per key
        bulk.run(
            "INSERT INTO suppression_consentimportkey (key, event_id, created_at)"
            " SELECT k, e, %s FROM unnest(%b::text[], %b::bigint[]) AS t(k, e)",
            [now, [row.external_key for _, row, *_ in prepared], [event.id for event in events]],
            prepare=False,
        )
    else:
        ConsentImportKey.objects.bulk_create(
            [
                ConsentImportKey(key=row.external_key, event=event, created_at=now)
                for (_, row, _, _, _, _), event in zip(prepared, events, strict=True)
            ]
        )
    result.created += len(events)
    result.event_ids.extend(event.id for event in events)
    result.event_indexes.extend(index for index, *_ in prepared)


def _advance_copy(levels: dict[Any, Any], spec: NewEvent, chains: int) -> None:
    """Advance the in-memory copy of the state by an event about to be appended (its order is
    taken as after everything stored: what matters is whether a later grant is blocked)."""
    assert spec.contact is not None
    level = (spec.contact.id, spec.channel, spec.purpose.id if spec.purpose else None)
    row = levels.get(level)
    if row is None:
        fields: dict[str, Any] = dict.fromkeys(STATE_FIELDS)
        fields.update({name: "" for name in STATE_FIELDS if name.endswith("_order")})
        row = levels[level] = SimpleNamespace(**fields)
    probe = SimpleNamespace(
        pk=None,
        action=spec.action,
        pending_confirmation=spec.pending_confirmation,
        occurred_at=spec.occurred_at or timezone.now(),
        chain=chain_for(spec.contact.id, chains),
        seq=2**62,
        basis=spec.basis,
        actor=spec.principal.actor,
        actor_contact_id=None,
        notice=spec.notice,
        opt_out_offered=spec.opt_out_offered,
        confirms=None,
    )
    advance(row, probe)
