"""The member's pages: unsubscribe (with RFC 8058 one-click), the preference centre, double
opt-in confirmation and the lost-link form. Plain HTML, no JavaScript, no tracking cookies.

GET and HEAD never change anything (mail scanners prefetch links). The only POST accepted
without a CSRF token is RFC 8058's ``List-Unsubscribe=One-Click`` to ``/u/{token}``, which by
design carries no cookie; the signed token is its authority. Every other POST is checked with
Django's own CSRF middleware logic inside the view, so a failure renders a friendly page.

Longer than 400 lines: one view per member page, each short; they share the friendly error
pages and the CSRF handling above, which would otherwise be imported back and forth.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from comms.links import BadToken, ExpiredToken, make_token, read_confirm_token
from comms.suppression.keys import address_key
from comms.suppression.models import Source
from comms.suppression.services import Evidence
from comms.web import selectors, services
from comms.web.selectors import MemberLink, Scope, Status
from comms.web.services import LostLinkResult, Refusal
from comms.web.texts import catalogue, channel_name, language, names_list, text

View = Callable[..., HttpResponse]
ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


# --- the frame ----------------------------------------------------------------------------------


def _lang(request: HttpRequest) -> str:
    return language(request.GET.get("lang"))


def _page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HttpResponse:
    lang = _lang(request)
    other = text("switch_language_code", lang)
    base = {
        "lang": lang,
        "t": catalogue(lang),
        "lang_query": "?lang=en" if lang == "en" else "",
        "switch_url": request.path + ("?lang=en" if other == "en" else ""),
        "brand_name": "",
    }
    response = render(request, f"web/{template}", base | (context or {}), status=status)
    # The URL holds a personal token: keep it out of caches, other sites' logs and search engines.
    # (Not "no-referrer": browsers then send "Origin: null" and the CSRF check refuses the form.)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _problem(request: HttpRequest, *, expired: bool = False, status: int | None = None) -> HttpResponse:
    """A bad or expired link: a friendly page with the lost-link form, never a stack trace."""
    lang = _lang(request)
    kind = "expired" if expired else "bad"
    return _page(
        request,
        "problem.html",
        {"title": text(f"{kind}_title", lang), "lead": text(f"{kind}_lead", lang), "show_lost_form": True},
        status=status or (410 if expired else 400),
    )


def _unused(request: HttpRequest) -> HttpResponse:
    return HttpResponse()  # stands in for the view: the check never calls it


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    """Django's CSRF check, run in the view: None when the POST may proceed."""
    check = CsrfViewMiddleware(_unused)
    if check.process_view(request, _unused, (), {}) is None:
        return None
    lang = _lang(request)
    return _page(
        request,
        "problem.html",
        {"title": text("forbidden_title", lang), "lead": text("forbidden_lead", lang)},
        status=403,
    )


def _protected(view: View) -> View:
    """CSRF-checked POSTs (see the module docstring), GET and HEAD otherwise."""

    @csrf_exempt
    @require_http_methods(["GET", "HEAD", "POST"])
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and (failure := _csrf_failure(request)) is not None:
            return failure
        return view(request, *args, **kwargs)

    return wrapper


def _evidence(request: HttpRequest) -> Evidence:
    ip: str | None = request.META.get("REMOTE_ADDR") or None
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            ip = None
    return Evidence(ip=ip, user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:1000])


def _mask(channel: str, address: str) -> str:
    """kari.nordmann@example.no -> k•••@example.no; +4741234567 -> +47 ••• •• 567."""
    if channel == "email":
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    return f"{address[:3]}\u00a0•••\u00a0••\u00a0{address[-3:]}"  # no line break inside


def _link_context(link: MemberLink, lang: str) -> dict[str, Any]:
    return {
        "brand_name": link.brand.name,
        "channel": link.channel,
        "channel_name": channel_name(link.channel, lang),
        "address": _mask(link.channel, link.address),
    }


def _resolve(request: HttpRequest, token: str, *, need_purpose: bool) -> MemberLink | HttpResponse:
    try:
        return selectors.member_link_resolve(token, need_purpose=need_purpose)
    except ExpiredToken:
        return _problem(request, expired=True)
    except BadToken:
        return _problem(request, status=404)


# --- unsubscribe --------------------------------------------------------------------------------


def _is_one_click(request: HttpRequest) -> bool:
    return request.POST.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE


@csrf_exempt  # RFC 8058: the one-click POST carries no cookie; every other POST is checked below
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    link = _resolve(request, token, need_purpose=True)
    if isinstance(link, HttpResponse):
        return link
    lang = _lang(request)
    if request.method != "POST":
        return _unsubscribe_form(request, link, lang, token)
    if _is_one_click(request):
        scope, source = Scope.PURPOSE, Source.ONE_CLICK
    else:
        if (failure := _csrf_failure(request)) is not None:
            return failure
        try:
            scope, source = Scope(request.POST.get("scope", "")), Source.UNSUBSCRIBE_LINK
        except ValueError:
            return _unsubscribe_form(request, link, lang, token, error=text("choose_scope", lang), status=400)
    outcome = services.member_unsubscribe(link=link, scope=scope, source=source, evidence=_evidence(request))
    assert link.purpose is not None
    values = {
        "brand": link.brand.name,
        "purpose": link.purpose.name,
        "channel": channel_name(link.channel, lang),
    }
    if not outcome.changed:
        message = text("done_already", lang)
    elif scope == Scope.PURPOSE:
        message = text("done_purpose", lang, **values)
    elif scope == Scope.CHANNEL:
        message = text(f"done_channel_{link.channel}", lang, **values)
    else:
        message = text("done_all", lang, **values)
    return _page(
        request,
        "unsubscribed.html",
        _link_context(link, lang) | {"message": message, "changed": outcome.changed, "token": token},
    )


def _unsubscribe_form(
    request: HttpRequest, link: MemberLink, lang: str, token: str, *, error: str = "", status: int = 200
) -> HttpResponse:
    assert link.purpose is not None
    channel = channel_name(link.channel, lang)
    values = {"brand": link.brand.name, "purpose": link.purpose.name, "channel": channel}
    context = _link_context(link, lang) | {
        "lead": text("unsubscribe_lead", lang, **values, address=_mask(link.channel, link.address)),
        "choices": [
            (Scope.PURPOSE.value, text("scope_purpose", lang, **values), text("scope_purpose_hint", lang)),
            (
                Scope.CHANNEL.value,
                text(f"scope_channel_{link.channel}", lang, **values),
                text("scope_channel_hint", lang, **values),
            ),
            (Scope.ALL.value, text("scope_all", lang, **values), text("scope_all_hint", lang)),
        ],
        "notice": link.purpose.current_notice(),
        "notice_version": "",
        "error": error,
        "token": token,
    }
    notice = context["notice"]
    if notice is not None:
        context["notice_version"] = text("notice_version", lang, version=notice.version)
    return _page(request, "unsubscribe.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
def short_link(request: HttpRequest, code: str) -> HttpResponse:
    """``/s/{code}`` from an SMS: the same unsubscribe page as the email link."""
    try:
        token = selectors.short_link_token(code)
    except ExpiredToken:
        return _problem(request, expired=True)
    except BadToken:
        return _problem(request, status=404)
    suffix = "?lang=en" if _lang(request) == "en" else ""
    return HttpResponseRedirect(f"/u/{token}{suffix}")


# --- the preference centre ----------------------------------------------------------------------


@_protected
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    link = _resolve(request, token, need_purpose=False)
    if isinstance(link, HttpResponse):
        return link
    lang = _lang(request)
    values = {"brand": link.brand.name, "channel": channel_name(link.channel, lang)}
    address = _mask(link.channel, link.address)
    notes: list[str] = []
    saved = False
    if request.method == "POST":
        saved = True
        action = request.POST.get("action", "save")
        evidence = _evidence(request)
        renew = str(request.POST.get("renew", ""))
        if renew.isdigit() and len(renew) < 19:
            renewed = services.consent_renew(link=link, purpose_id=int(renew), evidence=evidence, lang=lang)
            if renewed is not None:
                notes.append(
                    text("saved_requested", lang, names=names_list([renewed.name], lang), address=address)
                )
            else:
                notes.append(text("saved_nothing", lang))
        elif action in (Scope.CHANNEL, Scope.ALL):
            outcome = services.member_unsubscribe(
                link=link, scope=Scope(action), source=Source.PREFERENCE_CENTRE, evidence=evidence
            )
            key = f"done_channel_{link.channel}" if action == Scope.CHANNEL else "done_all"
            notes.append(text(key, lang, **values) if outcome.changed else text("done_already", lang))
        else:
            wanted = {int(v) for v in request.POST.getlist("purpose") if v.isdigit() and len(v) < 19}
            result = services.preferences_save(link=link, wanted=wanted, evidence=evidence, lang=lang)
            if result.withdrawn:
                names = names_list([p.name for p in result.withdrawn], lang)
                notes.append(text("saved_withdrawn", lang, names=names))
            if result.requested:
                names = names_list([p.name for p in result.requested], lang)
                notes.append(text("saved_requested", lang, names=names, address=address))
            for purpose, refusal in result.refused:
                if refusal == Refusal.MINOR:
                    notes.append(text("saved_refused_minor", lang, age=settings.DIGITAL_CONSENT_AGE))
                else:
                    notes.append(text("saved_refused", lang, purpose=purpose.name))
            if not (result.changed or result.refused):
                notes.append(text("saved_nothing", lang))
    rows = []
    for row in selectors.preference_rows(link=link):
        rows.append(
            {
                "id": row.purpose.pk,
                "name": row.purpose.name,
                "status": row.status.value,
                "status_label": text(f"status_{row.status.value}", lang),
                "hint": text(f"status_{row.status.value}_hint", lang)
                if row.status in (Status.PENDING, Status.RENEW, Status.UNAVAILABLE)
                else "",
                "checked": row.subscribed,
                "renewable": row.renewable,
                "disabled": row.status == Status.UNAVAILABLE,
                "notice": row.notice.text if row.notice else "",
                "notice_version": text("notice_version", lang, version=row.notice.version)
                if row.notice
                else "",
            }
        )
    context = _link_context(link, lang) | {
        "token": token,
        "rows": rows,
        "saved": saved,
        "notes": notes,
        "lead": text("preferences_lead", lang, **values, address=address),
        "none": text("preferences_none", lang, **values),
        "double_opt_in": text("preferences_double_opt_in", lang, address=address),
        "stop_channel": text(f"stop_channel_{link.channel}", lang),
        "stop_all": text("stop_all", lang),
        "stop_lead": text("stop_lead", lang, **values),
    }
    return _page(request, "preferences.html", context)


# --- double opt-in ------------------------------------------------------------------------------


@_protected
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        grant_ids = read_confirm_token(token)
        state = selectors.confirm_state(grant_ids=grant_ids)
    except ExpiredToken:
        return _problem(request, expired=True)
    except BadToken:
        return _problem(request, status=404)
    lang = _lang(request)
    contact = state.contact
    channel = state.grants[0].channel
    values = {"brand": contact.brand.name, "channel": channel_name(channel, lang)}
    address = contact.address_for(channel) or ""
    context: dict[str, Any] = {
        "brand_name": contact.brand.name,
        "token": token,
        "preferences_token": "",
    }
    if request.method == "POST" and state.open:
        state, confirmations = services.consent_confirm_link(grant_ids=grant_ids, evidence=_evidence(request))
        if confirmations:
            confirmed_ids = {c.confirms_id for c in confirmations}
            context |= {
                "done": True,
                "lead": text("confirmed_lead", lang, **values),
                "purposes": [g.purpose.name for g in state.open if g.pk in confirmed_ids and g.purpose],
                "preferences_token": _preferences_token(state, channel),
            }
            return _page(request, "confirm.html", context)
    if state.open:
        context |= {
            "ask": True,
            "lead": text("confirm_lead", lang, **values, address=_mask(channel, address)),
            "purposes": [g.purpose.name for g in state.open if g.purpose],
        }
        return _page(request, "confirm.html", context)
    if state.confirmed and not state.cancelled:
        return _page(
            request,
            "problem.html",
            {
                "brand_name": contact.brand.name,
                "title": text("used_title", lang),
                "lead": text("used_lead", lang),
                "preferences_token": _preferences_token(state, channel),
            },
        )
    return _page(
        request,
        "problem.html",
        {
            "brand_name": contact.brand.name,
            "title": text("cancelled_title", lang),
            "lead": text("cancelled_lead", lang),
            "show_lost_form": True,
        },
        status=410,
    )


def _preferences_token(state: selectors.ConfirmState, channel: str) -> str:
    """Having just proved the address, the person may go on to their preferences."""
    address = state.contact.address_for(channel)
    if not address:
        return ""
    return make_token(
        contact_id=state.contact.pk, purpose_id=0, channel=channel, address_key=address_key(channel, address)
    )


# --- the lost-link form -------------------------------------------------------------------------


@_protected
def lost_link(request: HttpRequest) -> HttpResponse:
    lang = _lang(request)
    if request.method != "POST":
        return _page(request, "lost.html", {"show_lost_form": True})
    raw = str(request.POST.get("address", ""))
    ip = _evidence(request).ip
    result, address = services.lost_link_request(raw=raw, ip=ip, lang=lang)
    if result == LostLinkResult.LIMITED:
        return _page(
            request,
            "problem.html",
            {"title": text("lost_limited_title", lang), "lead": text("lost_limited_lead", lang)},
            status=429,
        )
    if result == LostLinkResult.INVALID:
        return _page(
            request,
            "lost.html",
            {"show_lost_form": True, "error": text("lost_invalid", lang), "value": raw},
            status=400,
        )
    return _page(
        request,
        "problem.html",
        {"title": text("lost_sent_title", lang), "lead": text("lost_sent_lead", lang, address=address)},
    )
