"""The public sign-up endpoint for the brands' own sites (no API key): fetch the form (notice
text, version, signed form token), show it, then post the sign-up. The same rules and the same
answers as the HTML form (``comms.web.signup``)."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from comms.contacts.schemas import BrandKey
from comms.errors import NotFound
from comms.schemas import Address, InputSchema, Slug, Str100, Str254, Str1000, responses
from comms.suppression.models import Purpose
from comms.web.signup import HONEYPOT_FIELD, SignupResult, signup_form, signup_purpose, signup_request
from comms.web.texts import language, text
from comms.web.views import _evidence

router = Router(tags=["sign-up"])


class SignupFormOut(Schema):
    brand: str
    purpose: str
    name: str
    channels: list[str]
    notice_version: int
    notice_text: str
    form_token: str
    honeypot_field: str


class SignupIn(InputSchema):
    brand: BrandKey
    purpose: Slug
    address: Address = Field(
        description="an email address or a mobile number; 409 when the purpose does not take its channel "
        "or the number is not a mobile"
    )
    form_token: Str1000 = Field(description="from the form (GET): at least a few seconds, at most a day old")
    first_name: Str100 = ""
    website: Str254 = Field(default="", description="the honeypot: render it hidden and leave it empty")
    lang: Literal["nb", "en"] = Field(default="nb", description="the language of the confirmation message")


class SignupOut(Schema):
    status: str
    detail: str


def _purpose(brand: str, purpose: str) -> Purpose:
    found = signup_purpose(brand_key=brand, purpose_key=purpose)
    if found is None:
        raise NotFound("no such sign-up form")
    return found


@router.get(
    "/signup/{brand}/{purpose}",
    auth=None,
    response=responses({200: SignupFormOut}),
    summary="Get a sign-up form",
)
def signup_form_get(request: HttpRequest, brand: BrandKey, purpose: Slug) -> dict[str, Any]:
    """The form to show: the exact notice text and version, and a signed form token to post
    back (no sooner than a few seconds, no later than a day). Render ``honeypot_field`` hidden."""
    found = _purpose(brand, purpose)
    form = signup_form(purpose=found)
    return {
        "brand": found.brand.key,
        "purpose": found.key,
        "name": found.name,
        "channels": [c for c in ("email", "sms") if found.allows_channel(c)],
        "notice_version": form.notice.version,
        "notice_text": form.notice.text,
        "form_token": form.token,
        "honeypot_field": HONEYPOT_FIELD,
    }


_STATUS = {
    SignupResult.ACCEPTED: 202,
    SignupResult.INVALID: 409,
    SignupResult.EXPIRED: 409,
    SignupResult.LIMITED: 429,
}


@router.post(
    "/signup",
    auth=None,
    response=responses({202: SignupOut, 409: SignupOut, 429: SignupOut}),
    summary="Sign up",
)
def signup_post(request: HttpRequest, payload: SignupIn) -> Status[Any]:
    """Sign an address up (waits for double opt-in: a confirmation message goes to it). 202
    whether the address is new, known or already subscribed; 409 with `status: expired` when
    the form token is stale (fetch the form again), `status: invalid` when the address is not
    one the purpose can take; 429 when this client posts too often."""
    lang = language(payload.lang)
    result = signup_request(
        purpose=_purpose(payload.brand, payload.purpose),
        raw_address=payload.address,
        form_token=payload.form_token,
        honeypot=payload.website,
        evidence=_evidence(request),
        lang=lang,
        first_name=payload.first_name,
    )
    key = "signup_sent_lead" if result == SignupResult.ACCEPTED else f"signup_{result.value}"
    return Status(_STATUS[result], {"status": result.value, "detail": text(key, lang)})
