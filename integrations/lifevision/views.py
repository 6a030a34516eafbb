"""LifeVision's callbacks to us: ``POST /hooks/lifevision/reports`` and ``/inbound``.

Each request is checked in the order that cannot leak or lose anything: method (405), our own
configuration (503 without a webhook secret), the ``X-LV-Signature`` over the raw body with its
300 s replay window (401), the JSON and its required fields (400 naming the field). A valid
callback is stored once as a ``CallbackReceipt`` in one short transaction and processed by a
worker after commit (``integrations.lifevision.callbacks``); a repeat answers ``duplicate`` and does
nothing. The answer is always quick and never a 500 for anything the sender controls.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.views.decorators.csrf import csrf_exempt

from comms.errors import InvalidInput
from integrations.lifevision import callbacks
from integrations.lifevision.signatures import HEADER, SignatureError, verify

logger = logging.getLogger(__name__)


def _detail(status: int, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _handle(request: HttpRequest, kind: str) -> JsonResponse:
    if request.method != "POST":
        response = _detail(405, "method not allowed: LifeVision callbacks are POST")
        response["Allow"] = "POST"
        return response
    secret = getattr(settings, "LIFEVISION_WEBHOOK_SECRET", None)
    if not secret:
        logger.error("LifeVision %s callback refused: LIFEVISION_WEBHOOK_SECRET is not set", kind)
        return _detail(503, "LifeVision callbacks are not configured on this server")
    try:
        body = request.body
    except RequestDataTooBig:
        return _detail(413, "body too large")
    except UnreadablePostError:
        return _detail(400, "the body could not be read", field="body")
    try:
        verify(secret, request.headers.get(HEADER), body, now=time.time())
    except SignatureError as exc:
        logger.warning("LifeVision %s callback refused: %s", kind, exc.reason)
        return _detail(401, f"invalid {HEADER}: {exc.reason}")
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return _detail(400, "body is not valid JSON", field="body")
    try:
        if kind == callbacks.REPORT:
            dedupe_key = callbacks.report_parse(payload).dedupe_key
        else:
            dedupe_key = callbacks.inbound_parse(payload).dedupe_key
        created = callbacks.callback_receive(kind=kind, dedupe_key=dedupe_key, payload=payload)
    except InvalidInput as exc:
        return _detail(400, f"{exc.field}: {exc.message}", field=exc.field)
    except DatabaseError:
        logger.exception("LifeVision %s callback could not be stored", kind)
        # LifeVision retries what we do not acknowledge, so nothing is lost.
        return _detail(503, "temporarily unable to store the callback; please retry")
    return JsonResponse({"status": "accepted" if created else "duplicate"})


@csrf_exempt
def reports(request: HttpRequest) -> JsonResponse:
    """A delivery report (one per SMS segment)."""
    return _handle(request, callbacks.REPORT)


@csrf_exempt
def inbound(request: HttpRequest) -> JsonResponse:
    """An SMS a person sent to one of our numbers."""
    return _handle(request, callbacks.INBOUND)
