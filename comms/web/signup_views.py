"""The public sign-up page ``/signup/{brand}/{purpose}``: plain HTML, no JavaScript, no cookies.

Its POST is exempt from Django's CSRF check on purpose: the form is embeddable on the brands'
sites, where our CSRF cookie is a third-party cookie browsers drop. Forging a sign-up gains an
attacker nothing: it only asks the address's owner to confirm (double opt-in). The signed form
token, the honeypot and the rate limits (``comms.web.signup``) keep bots and floods out.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from comms.core.middleware import embeddable
from comms.web.signup import HONEYPOT_FIELD, SignupResult, signup_form, signup_purpose, signup_request
from comms.web.texts import text
from comms.web.views import _evidence, _lang, _page

_STATUS = {
    SignupResult.ACCEPTED: 200,
    SignupResult.INVALID: 400,
    SignupResult.EXPIRED: 400,
    SignupResult.LIMITED: 429,
}


@csrf_exempt
@xframe_options_exempt  # embeddable in an iframe on the brand's own site
@embeddable
@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest, brand: str, purpose: str) -> HttpResponse:
    found = signup_purpose(brand_key=brand, purpose_key=purpose)
    if found is None:
        raise Http404("no such sign-up form")
    lang = _lang(request)
    error = ""
    status = 200
    value = ""
    if request.method == "POST":
        value = str(request.POST.get("address", ""))[:254]
        result = signup_request(
            purpose=found,
            raw_address=value,
            form_token=str(request.POST.get("form_token", "")),
            honeypot=str(request.POST.get(HONEYPOT_FIELD, "")),
            evidence=_evidence(request),
            lang=lang,
            first_name=str(request.POST.get("first_name", "")),
        )
        if result == SignupResult.ACCEPTED:
            return _page(
                request,
                "problem.html",
                {
                    "brand_name": found.brand.name,
                    "title": text("signup_sent_title", lang),
                    "lead": text("signup_sent_lead", lang),
                },
            )
        error = text(f"signup_{result.value}", lang)
        status = _STATUS[result]
    form = signup_form(purpose=found)
    channels = [c for c in ("email", "sms") if found.allows_channel(c)]
    context: dict[str, Any] = {
        "brand_name": found.brand.name,
        "purpose_name": found.name,
        "notice": form.notice.text,
        "notice_version": text("notice_version", lang, version=form.notice.version),
        "form_token": form.token,
        "honeypot": HONEYPOT_FIELD,
        "lead": text("signup_lead", lang, brand=found.brand.name, purpose=found.name),
        "address_label": text("signup_address_" + "_".join(channels), lang),
        "error": error,
        "value": value,
    }
    return _page(request, "signup.html", context, status=status)
