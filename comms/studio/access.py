"""Who may use the studio: a Django user in the ``marketer`` or ``dpo`` group (or a
superuser). Marketers see the brands granted to them (``BrandAccess``); the dpo group and
superusers see every brand. The studio never shows ledger evidence or data-protection
functions, whoever is logged in."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation

from comms.contacts.models import Brand

MARKETER_GROUP = "marketer"
DPO_GROUP = "dpo"
STUDIO_GROUPS = (MARKETER_GROUP, DPO_GROUP)
LANGUAGES = ("nb", "en")

User = AbstractBaseUser | AnonymousUser


def _groups(user: Any) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def studio_allowed(user: Any) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_superuser or _groups(user) & set(STUDIO_GROUPS))


def studio_brands(user: Any) -> QuerySet[Brand]:
    """The brands whose campaigns ``user`` may see and edit."""
    if not studio_allowed(user):
        return Brand.objects.none()
    if user.is_superuser or DPO_GROUP in _groups(user):
        return Brand.objects.all()
    return Brand.objects.filter(pk__in=user.studio_brands.values("brand_id"))


def studio_language(request: HttpRequest) -> str:
    lang = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    return lang if lang in LANGUAGES else settings.LANGUAGE_CODE


V = TypeVar("V", bound=HttpResponseBase)


def studio_view(view: Callable[..., V]) -> Callable[..., V | HttpResponse]:
    """Login required, a studio group required (else 403), and the studio's language."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> V | HttpResponse:
        with translation.override(studio_language(request)):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), reverse("studio:login"))
            if not studio_allowed(request.user):
                return render(request, "studio/forbidden.html", status=403)
            response = view(request, *args, **kwargs)
            response.headers.setdefault("Cache-Control", "private, no-store")
            return response

    return wrapper
