"""Follow-up rules in the studio: list, create, edit and watch (what is planned, what went
out, why not). Writes go through ``comms.campaigns.followups.services``; a rule is looked up
within the user's brands, so another brand's rule is a 404."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from comms.campaigns.followups import services as followup_services
from comms.campaigns.models import Campaign, FollowUpRule
from comms.errors import DomainError, InvalidInput
from comms.studio import selectors
from comms.studio.access import studio_brands, studio_view
from comms.studio.forms import TRIGGERS, FollowUpRuleForm
from comms.studio.labels import reason_label
from comms.studio.preview import MERGE_FIELDS, message_preview


def _rule(request: HttpRequest, rule_id: int) -> FollowUpRule:
    rule = selectors.studio_followup_rules(brands=studio_brands(request.user)).filter(pk=rule_id).first()
    if rule is None:
        raise Http404("no such rule")
    return rule


def _draft_message(form: FollowUpRuleForm) -> Any:
    """The rule's message for a sample person, once the form names a purpose."""
    data = dict(form.cleaned_data) if form.is_bound else {}
    purpose = form.brand.purposes.filter(key=data.get("purpose") or form.initial.get("purpose") or "").first()
    if purpose is None:
        return None
    source = data if form.is_bound else form.initial
    campaign = Campaign(
        brand=form.brand,
        channel=form.channel,
        purpose=purpose,
        subject=source.get("subject") or "",
        html=source.get("html") or "",
        text=source.get("text") or "",
        sms_max_segments=source.get("sms_max_segments") or 2,
    )
    return message_preview(campaign=campaign)


def _context(form: FollowUpRuleForm, **extra: Any) -> dict[str, Any]:
    form.is_valid() if form.is_bound else None
    return {
        "form": form,
        "brand": form.brand,
        "channel": form.channel,
        "merge_fields": MERGE_FIELDS,
        "message": _draft_message(form),
        "window_days": settings.FOLLOWUP_WINDOW_DAYS,
        **extra,
    }


@require_GET
@studio_view
def followup_list(request: HttpRequest) -> HttpResponse:
    brands = studio_brands(request.user)
    watches = [selectors.followup_watch(rule=rule, upcoming=0) for rule in selectors.studio_followup_rules(brands=brands)]
    return render(request, "studio/followups.html", {"watches": watches, "brands": brands, "triggers": TRIGGERS})


@require_http_methods(["GET", "POST"])
@studio_view
def followup_new(request: HttpRequest) -> HttpResponse:
    brand = studio_brands(request.user).filter(key=request.GET.get("brand", "")).first()
    channel = request.GET.get("channel", "")
    if brand is None or channel not in ("email", "sms"):
        return redirect("studio:followups")
    if request.method == "GET":
        form = FollowUpRuleForm(brand=brand, channel=channel, initial={"delay_hours": 24, "active": True})
        return render(request, "studio/followup_form.html", _context(form))
    form = FollowUpRuleForm(request.POST, brand=brand, channel=channel)
    if form.is_valid():
        try:
            rule = followup_services.followup_rule_create(
                brand=brand, data=form.to_input(), created_by=f"studio:{request.user.get_username()}"
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The follow-up rule is saved."))
            return redirect("studio:followup", rule_id=rule.pk)
    return render(request, "studio/followup_form.html", _context(form), status=422)


@require_http_methods(["GET", "POST"])
@studio_view
def followup_detail(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule(request, rule_id)
    channel = rule.campaign.channel
    if request.method == "POST":
        form = FollowUpRuleForm(request.POST, brand=rule.brand, channel=channel, existing=True,
                                initial=FollowUpRuleForm.initial_for(rule))
        if form.is_valid():
            data = form.to_input()
            data.trigger = data.channel = None  # they cannot change
            try:
                followup_services.followup_rule_update(rule=rule, data=data)
            except InvalidInput as error:
                form.add_service_error(error)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, _("The follow-up rule is saved."))
                return redirect("studio:followup", rule_id=rule.pk)
        status = 422
    else:
        form = FollowUpRuleForm(initial=FollowUpRuleForm.initial_for(rule), brand=rule.brand, channel=channel,
                                existing=True)
        status = 200
    watch = selectors.followup_watch(rule=rule)
    context = _context(
        form,
        rule=rule,
        watch=watch,
        report=watch.report,
        denied=[(reason_label(code), n) for code, n in watch.report.denied],
        deferred=[(reason_label(code), n) for code, n in watch.report.deferred],
        failed=[(reason_label(code), n) for code, n in watch.report.failed],
    )
    return render(request, "studio/followup_form.html", context, status=status)
