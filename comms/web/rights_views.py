"""Self-service rights from the preference centre (DESIGN §6): the person asks, we send a
short-lived rights link to the address, and only with that link (proof that they hold the
address now) can they download their export or ask for erasure. The preferences link alone
is not enough: it lives for months and may have been forwarded.

A request for a link answers the same whether it was sent or held back by the limit.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from comms.links import BadToken, ExpiredToken
from comms.rights import services as rights_services
from comms.web import selectors
from comms.web.services import rights_link_request
from comms.web.texts import text
from comms.web.views import _lang, _link_context, _mask, _page, _problem, _protected, _resolve


@_protected
def rights_request(request: HttpRequest, token: str) -> HttpResponse:
    """``POST /preferences/{token}/rights``: send a rights link to the address."""
    link = _resolve(request, token, need_purpose=False)
    if isinstance(link, HttpResponse):
        return link
    lang = _lang(request)
    if request.method == "POST":
        rights_link_request(link=link, lang=lang)
    hours = settings.RIGHTS_LINK_MAX_AGE // 3600
    return _page(
        request,
        "problem.html",
        _link_context(link, lang)
        | {
            "title": text("rights_heading", lang),
            "lead": text("rights_link_sent", lang, address=_mask(link.channel, link.address), hours=hours)
            if request.method == "POST"
            else text("rights_lead", lang, address=_mask(link.channel, link.address)),
            "preferences_token": token,
        },
    )


@_protected
def rights(request: HttpRequest, token: str) -> HttpResponse:
    """``/rights/{token}``: GET shows the choices (changes nothing); POST ``action=export``
    downloads the JSON, ``action=erase`` erases a lead or queues the request for the DPO."""
    try:
        link = selectors.member_link_resolve(token, need_purpose=False, rights=True)
    except ExpiredToken:
        return _problem(request, expired=True)
    except BadToken:
        return _problem(request, status=404)
    lang = _lang(request)
    context = _link_context(link, lang) | {"token": token}
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "export":
        document = rights_services.selfservice_export(contact_id=link.contact.pk)
        response = HttpResponse(
            json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2),
            content_type="application/json; charset=utf-8",
        )
        day = timezone.localdate().isoformat()
        response["Content-Disposition"] = f'attachment; filename="{link.brand.key}-data-{day}.json"'
        response["Cache-Control"] = "no-store"
        return response
    if action == "erase":
        outcome = rights_services.selfservice_erasure(contact_id=link.contact.pk, channel=link.channel)
        if outcome.erased:
            lead = text("rights_erased", lang, brand=link.brand.name)
        else:
            assert outcome.request is not None
            due = timezone.localtime(outcome.request.due_at).date().isoformat()
            lead = text("rights_queued", lang, due=due)
        return _page(
            request, "problem.html", context | {"title": text("rights_erase_title", lang), "lead": lead}
        )
    context |= {
        "export_lead": text("rights_export_lead", lang, brand=link.brand.name),
    }
    return _page(request, "rights.html", context)
