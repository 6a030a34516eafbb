"""Follow-up rules (marketers) and, per person, what is planned, sent and why not (staff)."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.campaigns.followups import selectors, services
from comms.campaigns.followups.schemas import (
    FollowUpOut,
    FollowUpRuleFilter,
    FollowUpRuleIn,
    FollowUpRuleOut,
    FollowUpRulePatch,
    NoVisitFollowUpRuleIn,
    VisitFollowUpRuleIn,
)
from comms.campaigns.models import FollowUp, FollowUpRule
from comms.contacts.selectors import contact_get
from comms.references import brand_named, purpose_named
from comms.schemas import Pagination, PathId, responses

router = Router(tags=["follow-ups"])
EDITORS = (Role.MARKETER, Role.DPO, Role.SYSTEM)


def _input(
    payload: VisitFollowUpRuleIn | NoVisitFollowUpRuleIn | FollowUpRulePatch,
) -> services.FollowUpRuleInput:
    data = services.FollowUpRuleInput()
    for name, value in payload.model_dump(exclude_unset=True).items():
        if hasattr(data, name):
            setattr(data, name, value)
    return data


@router.get(
    "/followup-rules", response=responses({200: list[FollowUpRuleOut]}), summary="List follow-up rules"
)
@paginate(Pagination)
def list_rules(request: HttpRequest, filters: Query[FollowUpRuleFilter]) -> QuerySet[FollowUpRule]:
    """Every follow-up rule, optionally of one brand."""
    return selectors.followup_rule_list(brand=filters.brand)


@router.post("/followup-rules", response=responses({201: FollowUpRuleOut}), summary="Create a follow-up rule")
@require_role(*EDITORS)
def create_rule(request: HttpRequest, payload: FollowUpRuleIn) -> Status[Any]:
    """A rule: its trigger, the delay after it, and the message (channel, purpose, content).
    Active rules plan a follow-up for each matching visit; each goes out through the gate.
    A `no_visit` rule also names `inactive_days`. 409 when the purpose does not allow the
    channel or the content breaks a campaign rule (see `POST /campaigns`)."""
    brand = brand_named(payload.brand)
    purpose_named(brand, payload.purpose)
    data = _input(payload)
    data.active = payload.active
    rule = services.followup_rule_create(brand=brand, data=data, created_by=principal_name(request))
    return Status(201, selectors.followup_rule_get(rule_id=rule.pk))


@router.get(
    "/followup-rules/{rule_id}", response=responses({200: FollowUpRuleOut}), summary="Get a follow-up rule"
)
def get_rule(request: HttpRequest, rule_id: PathId) -> FollowUpRule:
    """The rule with its message."""
    return selectors.followup_rule_get(rule_id=rule_id)


@router.patch(
    "/followup-rules/{rule_id}", response=responses({200: FollowUpRuleOut}), summary="Change a follow-up rule"
)
@require_role(*EDITORS)
def patch_rule(request: HttpRequest, rule_id: PathId, payload: FollowUpRulePatch) -> FollowUpRule:
    """Change the name, timing or message, or pause (`active: false`) and resume the rule.
    Unknown fields are refused (422)."""
    rule = selectors.followup_rule_get(rule_id=rule_id)
    if payload.purpose is not None:
        purpose_named(rule.brand_id, payload.purpose)
    return services.followup_rule_update(rule=rule, data=_input(payload))


@router.get(
    "/contacts/{contact_id}/followups",
    response=responses({200: list[FollowUpOut]}),
    summary="A contact's follow-ups",
)
def contact_followups(request: HttpRequest, contact_id: PathId) -> QuerySet[FollowUp]:
    """What is planned for the person, what went out, and why anything did not."""
    return selectors.contact_followups(contact=contact_get(contact_id=contact_id))
