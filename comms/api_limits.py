"""Request limits of the API, answered in its own error shape (documented as 413 and 414)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

API_PREFIX = "/api/"
# Far above what any documented query needs (the longest filter value is 254 characters, 12
# bytes each when percent-encoded), and below the request line gunicorn accepts (Procfile).
MAX_QUERY_STRING = 4096


class ApiLimitsMiddleware:
    """A query string longer than ``MAX_QUERY_STRING`` on /api/ gets a JSON 414, before any
    view parses it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.path.startswith(API_PREFIX)
            and len(request.META.get("QUERY_STRING", "")) > MAX_QUERY_STRING
        ):
            body = {"detail": f"the query string is longer than {MAX_QUERY_STRING} characters", "field": None}
            return HttpResponse(json.dumps(body), status=414, content_type="application/json; charset=utf-8")
        return self.get_response(request)
