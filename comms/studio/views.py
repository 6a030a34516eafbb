"""The marketer's pages. Thin: parse a form, call one service or selector, render. Every
campaign is looked up within the user's brands, so another brand's campaign is a 404."""

from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from comms.campaigns import selectors as campaign_selectors
from comms.campaigns import services as campaign_services
from comms.campaigns.models import Campaign, CampaignStatus, PreviewStatus
from comms.campaigns.previews import campaign_preview_request
from comms.campaigns.selectors import Preview, preview_of
from comms.contacts.models import Brand
from comms.errors import DomainError, InvalidInput
from comms.studio import selectors
from comms.studio.access import studio_brands, studio_language, studio_view
from comms.studio.charts import bar_line_chart
from comms.studio.forms import AUDIENCE_FORM_FIELDS, CampaignForm, ScheduleForm, TestSendForm
from comms.studio.labels import channel_label, reason_label
from comms.studio.preview import MERGE_FIELDS, message_preview
from comms.studio.services import campaign_test_send

ACTIONS = {
    "send": campaign_services.campaign_send_now,
    "pause": campaign_services.campaign_pause,
    "resume": campaign_services.campaign_resume,
    "cancel": campaign_services.campaign_cancel,
}
LIVE_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING)


def _campaign(request: HttpRequest, campaign_id: int, *, include_rules: bool = False) -> Campaign:
    brands = studio_brands(request.user)
    campaign = selectors.studio_campaigns(brands=brands, include_rules=include_rules).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("no such campaign")
    return campaign


def _username(request: HttpRequest) -> str:
    return f"studio:{request.user.get_username()}"


_login_view = auth_views.LoginView.as_view(
    template_name="studio/login.html", redirect_authenticated_user=True, next_page="studio:dashboard"
)


def login(request: HttpRequest) -> HttpResponse:
    """Django's login form, in the studio's language (the admin login's throttle applies)."""
    with translation.override(studio_language(request)):
        response = _login_view(request)
        if isinstance(response, TemplateResponse):
            response.render()
    assert isinstance(response, HttpResponse)
    return response


@require_GET
@studio_view
def dashboard(request: HttpRequest) -> HttpResponse:
    brands = studio_brands(request.user)
    rows = selectors.campaign_rows(campaigns=selectors.studio_campaigns(brands=brands)[:200])
    charts = [
        {
            "series": series,
            "title": f"{series.brand.name} – {channel_label(series.channel)}",
            "svg": bar_line_chart(
                days=series.days,
                bars=series.messages,
                line=series.opt_outs,
                width=420,
                height=150,
                label=_("%(brand)s, %(channel)s: %(messages)s messages and %(opt_outs)s opt-outs in 90 days")
                % {
                    "brand": series.brand.name,
                    "channel": channel_label(series.channel),
                    "messages": series.total_messages,
                    "opt_outs": series.total_opt_outs,
                },
            ),
        }
        for series in selectors.daily_series(brands=brands)
    ]
    denials = [(reason_label(code), n) for code, n in selectors.top_denials(brands=brands)]
    return render(
        request, "studio/dashboard.html", {"rows": rows, "charts": charts, "denials": denials, "brands": brands}
    )


def _composer_context(form: CampaignForm, brand: Brand, channel: str, **extra: Any) -> dict[str, Any]:
    return {"form": form, "brand": brand, "channel": channel, "merge_fields": MERGE_FIELDS, **extra}


def _unsaved_campaign(form: CampaignForm, base: Campaign | None = None) -> Campaign | None:
    """The campaign as the form describes it, unsaved, or None while the purpose or an audience
    field is missing or wrong (a count over a half-read audience would mislead). The services'
    own checks land on the form as errors."""
    valid = form.is_valid()
    data = dict(form.cleaned_data)  # add_error() below takes a field out of cleaned_data
    audience = form.audience()
    if not data.get("purpose") or any(name in form.errors for name in AUDIENCE_FORM_FIELDS):
        return None
    purpose = form.brand.purposes.filter(key=data["purpose"]).first()
    if purpose is None:
        return None
    if valid:
        try:
            campaign_services.campaign_validate(brand=form.brand, data=form.to_input(), existing=base)
        except InvalidInput as error:
            form.add_service_error(error)
    return Campaign(
        pk=base.pk if base else None,
        brand=form.brand,
        channel=form.channel,
        purpose=purpose,
        name=data.get("name") or "",
        audience=audience,
        subject=data.get("subject") or "",
        html=data.get("html") or "",
        text=data.get("text") or "",
        sms_max_segments=data.get("sms_max_segments") or 2,
    )


def _counts_context(counts: Preview) -> dict[str, Any]:
    return {
        "preview": counts,
        "denied_total": counts.audience - counts.would_send,
        "denials": [(reason_label(code), code, n) for code, n in counts.would_deny.items()],
    }


def _preview_context(campaign: Campaign | None) -> dict[str, Any]:
    """The gate's counts decided inline, up to ``COMMS_PREVIEW_INLINE_MAX`` contacts. Above it
    only the size is counted here; a saved campaign's page counts it as a job
    (``comms.campaigns.previews``), and shows the latest one."""
    if campaign is None:
        return {"preview": None}
    size = campaign_selectors.campaign_audience(campaign=campaign).count()
    if size > settings.PREVIEW_INLINE_MAX:
        context: dict[str, Any] = {
            "preview": None,
            "too_big": size,
            "inline_max": settings.PREVIEW_INLINE_MAX,
            "message": message_preview(campaign=campaign),
        }
        job = campaign.previews.first() if campaign.pk else None
        if job is not None:
            context["job"] = job
            if job.status == PreviewStatus.DONE:
                context.update(_counts_context(preview_of(job.counts)))
        return context
    counts = campaign_selectors.campaign_preview(campaign=campaign)
    return {
        **_counts_context(counts),
        "denied_total": counts.audience - counts.would_send,
        "denials": [(reason_label(code), code, n) for code, n in counts.would_deny.items()],
        "message": message_preview(campaign=campaign),
    }


def _brand_and_channel(request: HttpRequest, source: Any) -> tuple[Brand, str] | None:
    brand = studio_brands(request.user).filter(key=source.get("brand", "")).first()
    channel = source.get("channel", "")
    if brand is None or channel not in ("email", "sms"):
        return None
    return brand, channel


@require_http_methods(["GET", "POST"])
@studio_view
def campaign_new(request: HttpRequest) -> HttpResponse:
    chosen = _brand_and_channel(request, request.GET)
    if chosen is None:
        brands = studio_brands(request.user)
        bad = bool(request.GET)
        return render(request, "studio/new.html", {"brands": brands, "bad": bad}, status=422 if bad else 200)
    brand, channel = chosen
    if request.method == "GET":
        form = CampaignForm(brand=brand, channel=channel, initial={"sms_max_segments": 2})
        return render(request, "studio/compose.html", _composer_context(form, brand, channel))
    form = CampaignForm(request.POST, brand=brand, channel=channel)
    if request.POST.get("action") != "preview" and form.is_valid():
        try:
            campaign = campaign_services.campaign_create(
                brand=brand, data=form.to_input(), created_by=_username(request)
            )
        except InvalidInput as error:
            form.add_service_error(error)
        else:
            messages.success(request, _("The campaign is saved as a draft."))
            return redirect("studio:campaign", campaign_id=campaign.pk)
    context = _composer_context(form, brand, channel, **_preview_context(_unsaved_campaign(form)))
    return render(request, "studio/compose.html", context, status=200 if form.is_valid() else 422)


@require_http_methods(["GET", "POST"])
@studio_view
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    if campaign.status not in campaign_services.EDITABLE or campaign.started_at is not None:
        messages.error(request, _("A campaign that has started sending cannot be edited."))
        return redirect("studio:campaign", campaign_id=campaign.pk)
    if request.method == "GET":
        form = CampaignForm(initial=CampaignForm.initial_for(campaign), brand=campaign.brand, channel=campaign.channel)
        context = _composer_context(form, campaign.brand, campaign.channel, campaign=campaign)
        return render(request, "studio/compose.html", {**context, **_preview_context(campaign)})
    form = CampaignForm(request.POST, brand=campaign.brand, channel=campaign.channel)
    if request.POST.get("action") != "preview" and form.is_valid():
        try:
            campaign_services.campaign_update(campaign=campaign, data=form.to_input())
        except InvalidInput as error:
            form.add_service_error(error)
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("studio:campaign", campaign_id=campaign.pk)
        else:
            messages.success(request, _("The changes are saved."))
            return redirect("studio:campaign", campaign_id=campaign.pk)
    context = _composer_context(form, campaign.brand, campaign.channel, campaign=campaign)
    context.update(_preview_context(_unsaved_campaign(form, base=campaign)))
    return render(request, "studio/compose.html", context, status=200 if form.is_valid() else 422)


@require_POST
@studio_view
def composer_preview(request: HttpRequest) -> HttpResponse:
    """The live preview beside the composer (htmx): audience, the gate's denials, the message."""
    chosen = _brand_and_channel(request, request.GET)
    if chosen is None:
        raise Http404("no such brand or channel")
    brand, channel = chosen
    base = None
    if request.GET.get("campaign"):
        try:
            base = _campaign(request, int(request.GET["campaign"]))
        except ValueError:
            raise Http404("no such campaign") from None
    form = CampaignForm(request.POST, brand=brand, channel=channel)
    context = {"form": form, "channel": channel, **_preview_context(_unsaved_campaign(form, base=base))}
    return render(request, "studio/_preview.html", context)


def _report_context(campaign: Campaign) -> dict[str, Any]:
    """What the report block shows: deliveries counted by status and reason (no gate preview,
    so the 3-second poll stays cheap)."""
    report = selectors.campaign_report(campaign=campaign)
    return {
        "campaign": campaign,
        "report": report,
        "report_chart": bar_line_chart(
            days=[hour for hour, _n in report.timeline],
            bars=[n for _hour, n in report.timeline],
            line=None,
            label=_("Messages handed to the provider per hour"),
        ),
        "denied": [(reason_label(code), n) for code, n in report.denied],
        "deferred": [(reason_label(code), n) for code, n in report.deferred],
        "failed": [(reason_label(code), n) for code, n in report.failed],
        "live": campaign.status in LIVE_STATUSES,
    }


def _detail_context(request: HttpRequest, campaign: Campaign, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        **_report_context(campaign),
        "editable": campaign.status in campaign_services.EDITABLE and campaign.started_at is None,
        "schedule_form": extra.pop("schedule_form", None) or ScheduleForm(initial={"send_at": campaign.send_at}),
        "test_form": extra.pop("test_form", None) or TestSendForm(),
        "test_sends": campaign.test_sends.all()[:10],
        "message": message_preview(campaign=campaign),
        "send_window": settings.SMS_SEND_WINDOW,
        "frequency_cap": settings.FREQUENCY_CAP[campaign.channel],
        **extra,
    }
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED):
        # Before sending: the audience and the gate's would-be denials as of now.
        context.update(_preview_context(campaign))
    return context


@require_GET
@studio_view
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    return render(request, "studio/campaign.html", _detail_context(request, campaign))


@require_GET
@studio_view
def campaign_report(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The report block alone: the campaign page polls it (htmx) while the campaign is live."""
    campaign = _campaign(request, campaign_id)
    return render(request, "studio/_report.html", _report_context(campaign))


@require_POST
@studio_view
def campaign_schedule(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = ScheduleForm(request.POST)
    if form.is_valid():
        try:
            campaign = campaign_services.campaign_schedule(campaign=campaign, send_at=form.cleaned_data["send_at"])
        except InvalidInput as error:
            form.add_error("send_at" if error.field == "send_at" else None, error.message)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            messages.success(request, _("The campaign is scheduled."))
            return redirect("studio:campaign", campaign_id=campaign.pk)
    context = _detail_context(request, campaign, schedule_form=form)
    return render(request, "studio/campaign.html", context, status=422)


@require_POST
@studio_view
def campaign_count(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Count a large audience with the gate as a job; its progress shows on the campaign page."""
    campaign = _campaign(request, campaign_id)
    campaign_preview_request(campaign=campaign, requested_by=_username(request))
    messages.success(request, _("The audience is being counted."))
    return redirect("studio:campaign", campaign_id=campaign.pk)


@require_POST
@studio_view
def campaign_action(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    service = ACTIONS.get(action)
    if service is None:
        raise Http404("no such action")
    try:
        service(campaign=campaign)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        done = {
            "send": _("The campaign is being sent."),
            "pause": _("The campaign is paused."),
            "resume": _("The campaign is resumed."),
            "cancel": _("The campaign is cancelled."),
        }
        messages.success(request, done[action])
    return redirect("studio:campaign", campaign_id=campaign.pk)


@require_POST
@studio_view
def campaign_test(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = TestSendForm(request.POST)
    if form.is_valid():
        try:
            sent = campaign_test_send(
                campaign=campaign, recipients=form.cleaned_data["recipients"], sent_by=_username(request)
            )
        except InvalidInput as error:
            form.add_error("recipients", error.message)
        else:
            ok = sum(1 for row in sent if row.status == "sent")
            if ok == len(sent):
                messages.success(request, _("Test sent to %(n)s address(es).") % {"n": ok})
            else:
                messages.error(
                    request, _("%(failed)s of %(n)s test messages failed.") % {"failed": len(sent) - ok, "n": len(sent)}
                )
            return redirect(reverse("studio:campaign", kwargs={"campaign_id": campaign.pk}) + "#test")
    context = _detail_context(request, campaign, test_form=form)
    return render(request, "studio/campaign.html", context, status=422)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@studio_view
def campaign_csv(request: HttpRequest, campaign_id: int) -> StreamingHttpResponse:
    campaign = _campaign(request, campaign_id, include_rules=True)  # a follow-up rule's too
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in selectors.deliveries_csv_rows(campaign=campaign)),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-deliveries.csv"'
    return response
