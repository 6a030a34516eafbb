"""Security headers on every response, and the admin login throttle."""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from comms.core import throttle

# No inline scripts anywhere (the API docs load theirs as files). The member pages and the API
# docs style with inline CSS, so style-src alone allows it.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=(), interest-cohort=()"
)


def embeddable(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let a page be framed by the sites in ``COMMS_EMBED_FRAME_ANCESTORS`` (the brands' own
    websites embed the sign-up form); every other header stays as strict as elsewhere."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
            "frame-ancestors 'none'", f"frame-ancestors {settings.EMBED_FRAME_ANCESTORS}"
        )
        return response

    return wrapper


class SecurityHeadersMiddleware:
    """CSP and Permissions-Policy (Django's SecurityMiddleware sets nosniff, Referrer-Policy and
    HSTS; XFrameOptionsMiddleware sets X-Frame-Options)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", settings.SECURE_REFERRER_POLICY or "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class AdminLoginThrottleMiddleware:
    """Refuses admin login attempts (POST) from an IP or for a username that failed too often
    recently (``COMMS_ADMIN_LOGIN_LIMIT_PER_IP`` / ``_PER_USERNAME``). Failures are counted by
    the ``user_login_failed`` signal (comms.core.throttle)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._login_paths: tuple[str, ...] | None = None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._login_paths is None:
            # The studio's login shares the limits: the same users, the same passwords.
            self._login_paths = (reverse("admin:login"), reverse("studio:login"))
        if request.method == "POST" and request.path in self._login_paths:
            username = str(request.POST.get("username", ""))
            if throttle.login_blocked(ip=throttle.client_ip(request), username=username):
                return HttpResponse(
                    "Too many failed login attempts. Try again later.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": str(throttle.retry_after())},
                )
        return self.get_response(request)
