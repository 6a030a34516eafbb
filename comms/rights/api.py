"""The rights endpoints (GDPR arts. 15–18, 20): dpo keys only, and every call is logged in the
rights audit log, refused ones too. Rectification is ``PATCH /contacts/{id}`` (contacts/api.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.http import HttpRequest
from ninja import Router, Status

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.errors import DomainError
from comms.rights import services
from comms.rights.models import RightsAction
from comms.rights.schemas import CommunicationLogOut, ErasureOut, ExportOut, RestrictionOut
from comms.schemas import PathId, responses

router = Router(tags=["rights"])
F = TypeVar("F", bound=Callable[..., Any])


def audited(action: RightsAction) -> Callable[[F], F]:
    """Allow the call to dpo keys only and log every refusal (the services log what succeeds,
    in the action's own transaction)."""

    def decorator(view: F) -> F:
        guarded = require_role(Role.DPO)(view)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                return guarded(request, *args, **kwargs)
            except DomainError as error:
                services.audit_refusal(
                    actor=principal_name(request) or "anonymous",
                    action=action,
                    contact_id=kwargs.get("contact_id"),
                    error=error,
                )
                raise

        wrapper.__comms_roles__ = [str(Role.DPO)]  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator


@router.get(
    "/contacts/{contact_id}/export", response=responses({200: ExportOut}), summary="Export a contact's data"
)
@audited(RightsAction.EXPORT)
def export_contact(request: HttpRequest, contact_id: PathId) -> dict[str, Any]:
    """Everything held about the person as one JSON document (arts. 15 and 20): profile,
    guardian link, visits, every ledger event with the notice text shown, suppressions of their
    addresses, every message with its decision and status, and where each provider stands.
    An erased contact exports what remains."""
    return services.contact_export(contact_id=contact_id, actor=principal_name(request))


@router.get(
    "/contacts/{contact_id}/log",
    response=responses({200: CommunicationLogOut}),
    summary="A contact's communication log",
)
@audited(RightsAction.LOG)
def contact_log(request: HttpRequest, contact_id: PathId) -> dict[str, Any]:
    """The communication log: every message to the person (campaigns, follow-ups, SMS
    replies) with the gate's or the rule's decision and the delivery status."""
    return services.contact_log(contact_id=contact_id, actor=principal_name(request))


@router.post("/contacts/{contact_id}/erase", response=responses({200: ErasureOut}), summary="Erase a contact")
@audited(RightsAction.ERASE)
def erase_contact(request: HttpRequest, contact_id: PathId) -> dict[str, Any]:
    """Erase the person's personal data in one transaction (art. 17), keeping the suppression
    of every address by keyed hash and the ledger's proof. 409 when already erased."""
    erasure = services.contact_erase_request(contact_id=contact_id, actor=principal_name(request))
    assert erasure.contact.erased_at is not None
    return {
        "contact_id": erasure.contact.pk,
        "erased_at": erasure.contact.erased_at,
        "event_id": erasure.event.pk,
        "suppressed_addresses": erasure.suppressed_keys,
        "propagation": [
            {"provider": p.provider, "status": p.status, "note": p.note} for p in erasure.propagation
        ],
    }


@router.post(
    "/contacts/{contact_id}/restrict",
    response=responses({201: RestrictionOut}),
    summary="Restrict processing",
)
@audited(RightsAction.RESTRICT)
def restrict_contact(request: HttpRequest, contact_id: PathId) -> Status[Any]:
    """Restrict processing (art. 18): no message to the person until lifted. 409 when already
    restricted or erased."""
    event = services.contact_restrict(contact_id=contact_id, actor=principal_name(request))
    return Status(
        201,
        {
            "contact_id": contact_id,
            "restricted": True,
            "event_id": event.pk,
            "occurred_at": event.occurred_at,
        },
    )


@router.post(
    "/contacts/{contact_id}/restrict/lift",
    response=responses({200: RestrictionOut}),
    summary="Lift a restriction",
)
@audited(RightsAction.LIFT_RESTRICTION)
def lift_restriction(request: HttpRequest, contact_id: PathId) -> dict[str, Any]:
    """Lift a restriction of processing. 409 when the person is not restricted."""
    event = services.contact_restriction_lift(contact_id=contact_id, actor=principal_name(request))
    return {
        "contact_id": contact_id,
        "restricted": False,
        "event_id": event.pk,
        "occurred_at": event.occurred_at,
    }
