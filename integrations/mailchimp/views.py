"""Mailchimp's audience webhooks: ``GET/POST /hooks/mailchimp/<secret>``.

Mailchimp signs nothing, so the secret sits in the path and is compared in constant time; a
wrong or unconfigured secret is a bare 404. GET (and an empty POST) answer Mailchimp's URL
validation. A POST is form-encoded; a valid event is stored once and processed by a worker, so
the answer is quick; a repeat answers ``duplicate``.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from comms.errors import InvalidInput
from integrations.mailchimp import webhooks

logger = logging.getLogger(__name__)


def _secret_ok(given: str) -> bool:
    expected = getattr(settings, "MAILCHIMP_WEBHOOK_SECRET", None)
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@csrf_exempt
def hook(request: HttpRequest, secret: str) -> HttpResponse:
    if not _secret_ok(secret):
        return HttpResponseNotFound()
    if request.method == "GET":
        return JsonResponse({"status": "ok"})
    if request.method != "POST":
        response = JsonResponse({"detail": "method not allowed"}, status=405)
        response["Allow"] = "GET, POST"
        return response
    form = {key: request.POST.get(key, "") for key in request.POST}
    if not form:
        return JsonResponse({"status": "ok"})  # the validator may POST an empty body
    try:
        kind, dedupe_key, payload = webhooks.webhook_parse(form)
        if kind == "ignored":
            return JsonResponse({"status": "ignored"})
        created = webhooks.webhook_receive(kind=kind, dedupe_key=dedupe_key, payload=payload)
    except InvalidInput as exc:
        return JsonResponse({"detail": f"{exc.field}: {exc}", "field": exc.field}, status=400)
    except DatabaseError:
        logger.exception("Mailchimp webhook could not be stored")
        return JsonResponse({"detail": "temporarily unable to store the webhook; please retry"}, status=503)
    return JsonResponse({"status": "accepted" if created else "duplicate"})
