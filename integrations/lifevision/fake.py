"""A fake LifeVision server that follows shared/LIFEVISION_API.md, for tests and local runs.

Run it with ``python -m integrations.lifevision.fake --port 8025`` or use ``FakeLifeVision`` in a
test. It checks the key, validates and deduplicates batches, rejects bad recipients, keeps what it
accepted (``.messages``, ``GET /_fake/messages``), fails on request (``.fail_next``,
``POST /_fake/fail``), goes down for a while (``.outage``, ``POST /_fake/outage``: every request
answered 503 until it recovers), throttles a share of requests with 429 (``.throttle``,
``POST /_fake/throttle``) and posts signed delivery reports to each message's ``callback_url``.
Control endpoints: ``GET /_fake/messages``, ``POST /_fake/reset``, ``POST /_fake/fail``,
``POST /_fake/outage``, ``POST /_fake/throttle``.

Longer than 400 lines: the LifeVision contract as a test double (validation, deduplication,
failures, outages, throttling, signed reports), which tests read as one file. The HTTP
plumbing is ``integrations.fakeserver``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, cast

from integrations.fakeserver import FakeRequest, FakeResponse, FakeServer, serve
from integrations.lifevision.signatures import HEADER, sign

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "fake-lifevision-api-key"
DEFAULT_WEBHOOK_SECRET = "fake-lifevision-webhook-secret"
MAX_BATCH = 1000
SMS_SINGLE_LIMIT = 160
SMS_SEGMENT_LENGTH = 153

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# An alphanumeric sender of at most 11 characters, or a short/long number.
_SMS_SENDER = re.compile(r"[A-Za-z0-9]{1,11}|\+?\d{1,15}")
_REPORT_ATTEMPTS = 4
_REPORT_TIMEOUT = 5.0
_REQUIRED_TEXT_FIELDS = ("external_id", "to", "sender", "text")
_OPTIONAL_TEXT_FIELDS = ("subject", "html", "callback_url")

# Never send callbacks through an HTTP proxy from the environment: they go to the given URL only.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BadRequest(Exception):
    """The batch is malformed; the whole request is refused with 400."""


@dataclass
class _Failure:
    status: int
    retry_after: float | None


def sms_segments(text: str) -> int:
    """How many SMS parts ``text`` is sent as (concatenated parts carry 153 characters each)."""
    if len(text) <= SMS_SINGLE_LIMIT:
        return 1
    return math.ceil(len(text) / SMS_SEGMENT_LENGTH)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeLifeVision(FakeServer):
    """An in-process LifeVision server on a background thread; ``port=0`` picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        send_reports: bool = True,
        report_delay: float = 0.2,
        blocked_recipients: Iterable[str] = (),
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.send_reports = send_reports
        self.report_delay = report_delay
        self.blocked_recipients: set[str] = {address.lower() for address in blocked_recipients}
        self._lock = threading.Lock()
        self._results: dict[str, dict[str, Any]] = {}
        self._messages: list[dict[str, Any]] = []
        self._requests = 0
        self._failures: list[_Failure] = []
        # An outage: every send request is answered with this status until the deadline.
        self._down: tuple[int, float] | None = None
        # A 429 storm: this share of send requests is answered 429 with this Retry-After.
        self._throttle: tuple[float, float] | None = None
        self._throttle_seen = 0
        self._failed_requests = 0
        self._report_threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    name: ClassVar[str] = "FakeLifeVision"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()
        super().stop()
        with self._lock:
            threads, self._report_threads = self._report_threads, []
        for thread in threads:
            thread.join(timeout=_REPORT_TIMEOUT)

    # --- the API ---------------------------------------------------------------------------
    def respond(self, request: FakeRequest) -> FakeResponse:
        if request.method == "GET" and request.path == "/_fake/messages":
            return FakeResponse.json(
                200, {"messages": self.messages, "requests": self.requests, "failed_requests": self.failed_requests}
            )
        if request.method != "POST":
            return FakeResponse.json(404, {"error": "not found"})
        if request.path == "/v1/messages":
            status, payload, extra = self._handle_send(request.headers, request.body)
            return FakeResponse.json(status, payload, headers=extra)
        if request.path == "/_fake/reset":
            self.reset()
            return FakeResponse.json(200, {})
        controls = {"/_fake/fail": self._handle_fail, "/_fake/outage": self._handle_outage, "/_fake/throttle": self._handle_throttle}
        if request.path in controls:
            return FakeResponse.json(*controls[request.path](request.body))
        return FakeResponse.json(404, {"error": "not found"})

    # --- what it received ------------------------------------------------------------------
    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every distinct message received, as sent plus its ``provider_id``/``status``/``error_code``."""
        with self._lock:
            return [dict(message) for message in self._messages]

    @property
    def requests(self) -> int:
        """How many ``POST /v1/messages`` requests arrived, failed ones included."""
        with self._lock:
            return self._requests

    @property
    def failed_requests(self) -> int:
        """How many send requests were answered with an injected failure (5xx, 429)."""
        with self._lock:
            return self._failed_requests

    @property
    def is_down(self) -> bool:
        with self._lock:
            return self._down is not None and self._down[1] > time.monotonic()

    def outage(self, seconds: float | None = None, status: int = 503) -> None:
        """Answer every send request with ``status`` for ``seconds`` (None: until ``recover``)."""
        with self._lock:
            self._down = (status, math.inf if seconds is None else time.monotonic() + seconds)

    def recover(self) -> None:
        """End an outage and a 429 storm now."""
        with self._lock:
            self._down = None
            self._throttle = None

    def throttle(self, ratio: float, retry_after: float = 1.0) -> None:
        """Answer ``ratio`` (0–1) of the send requests with 429 and ``Retry-After``, spread evenly
        (deterministic: of every 10 requests at 0.8, 8 are throttled). 0 ends the storm."""
        if not 0 <= ratio <= 1:
            raise ValueError("ratio must lie between 0 and 1")
        with self._lock:
            self._throttle = (ratio, retry_after) if ratio > 0 else None
            self._throttle_seen = 0

    def block(self, address: str) -> None:
        """Reject later messages to ``address`` with ``blocked_recipient``."""
        with self._lock:
            self.blocked_recipients.add(address.lower())

    def reset(self) -> None:
        with self._lock:
            self._results.clear()
            self._messages.clear()
            self._requests = 0
            self._failures.clear()
            self._down = None
            self._throttle = None
            self._failed_requests = 0

    def fail_next(self, n: int, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``n`` send requests with ``status`` (and ``Retry-After``), storing nothing."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(n))

    # --- callbacks to the service ----------------------------------------------------------
    def send_inbound(self, callback_url: str, from_: str, to: str, text: str) -> int:
        """Post a signed inbound SMS to ``callback_url`` now; returns the HTTP status it got."""
        payload = {
            "provider_id": f"lv-in-{uuid.uuid4()}",
            "from": from_,
            "to": to,
            "text": text,
            "received_at": _now_iso(),
        }
        return self._post_signed(callback_url, payload)

    def send_report(
        self,
        external_id: str,
        status: str,
        error_code: str | None = None,
        segment: int = 1,
        segments: int = 1,
    ) -> int:
        """Post one signed delivery report for a received message now (e.g. a hard bounce)."""
        with self._lock:
            result = self._results.get(external_id)
            message = next((m for m in self._messages if m["external_id"] == external_id), None)
        if result is None or message is None or not message.get("callback_url"):
            raise LookupError(f"no received message {external_id!r} with a callback_url")
        payload = self._report(result, status, error_code, segment, segments)
        return self._post_signed(message["callback_url"], payload)

    def _post_signed(self, url: str, payload: dict[str, Any]) -> int:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"callback URL must be http(s): {url!r}")
        body = json.dumps(payload).encode()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                HEADER: sign(self.webhook_secret, body, int(time.time())),
            },
        )
        try:
            with _opener.open(request, timeout=_REPORT_TIMEOUT) as response:
                return cast(int, response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    @staticmethod
    def _report(
        result: dict[str, Any], status: str, error_code: str | None, segment: int, segments: int
    ) -> dict[str, Any]:
        return {
            "provider_id": result["provider_id"],
            "external_id": result["external_id"],
            "status": status,
            "error_code": error_code,
            "segment": segment,
            "segments": segments,
            "occurred_at": _now_iso(),
        }

    def _schedule_reports(self, reports: list[tuple[str, dict[str, Any]]]) -> None:
        thread = threading.Thread(
            target=self._deliver_reports, args=(reports,), name="fake-lifevision-reports", daemon=True
        )
        with self._lock:
            self._report_threads = [t for t in self._report_threads if t.is_alive()]
            self._report_threads.append(thread)
        thread.start()

    def _deliver_reports(self, reports: list[tuple[str, dict[str, Any]]]) -> None:
        if self._stopping.wait(self.report_delay):
            return
        for url, payload in reports:
            for attempt in range(1, _REPORT_ATTEMPTS + 1):
                try:
                    status = self._post_signed(url, payload)
                except Exception as exc:  # a report that cannot be delivered must not kill the fake
                    logger.warning("report to %s failed (attempt %d): %s", url, attempt, exc)
                else:
                    if 200 <= status < 300:
                        break
                    logger.warning("report to %s answered %d (attempt %d)", url, status, attempt)
                if self._stopping.wait(0.1 * 2**attempt):
                    return

    # --- the send endpoint -----------------------------------------------------------------
    def _handle_send(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self._requests += 1
            failure = self._failures.pop(0) if self._failures else None
            if failure is None and self._down is not None:
                if self._down[1] > time.monotonic():
                    failure = _Failure(self._down[0], None)
                else:
                    self._down = None
            if failure is None and self._throttle is not None:
                ratio, retry_after = self._throttle
                seen, self._throttle_seen = self._throttle_seen, self._throttle_seen + 1
                if math.floor((seen + 1) * ratio) > math.floor(seen * ratio):
                    failure = _Failure(429, retry_after)
            if failure is not None:
                self._failed_requests += 1
        if failure is not None:
            extra = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
            return failure.status, {"error": "injected failure"}, extra
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": "invalid api key"}, {}
        try:
            messages = _parse_batch(raw)
        except BadRequest as exc:
            return 400, {"error": "bad request", "detail": str(exc)}, {}
        if not headers.get("idempotency-key"):
            return 400, {"error": "bad request", "detail": "Idempotency-Key header is required"}, {}

        results: list[dict[str, Any]] = []
        reports: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for message in messages:
                external_id = message["external_id"]
                known = self._results.get(external_id)
                if known is not None:
                    results.append(dict(known))
                    continue
                error_code = self._error_code(message)
                result = {
                    "external_id": external_id,
                    "provider_id": f"lv-{uuid.uuid4()}",
                    "status": "rejected" if error_code else "accepted",
                    "error_code": error_code,
                }
                self._results[external_id] = result
                self._messages.append({**message, **result, "received_at": _now_iso()})
                results.append(dict(result))
                callback_url = message.get("callback_url")
                if callback_url and error_code is None:
                    segments = sms_segments(message["text"]) if message["channel"] == "sms" else 1
                    reports.extend(
                        (callback_url, self._report(result, "delivered", None, segment, segments))
                        for segment in range(1, segments + 1)
                    )
        if reports and self.send_reports:
            self._schedule_reports(reports)
        return 202, {"messages": results}, {}

    def _error_code(self, message: dict[str, Any]) -> str | None:
        to = message["to"]
        if message["channel"] == "sms":
            if not _E164.fullmatch(to):
                return "invalid_recipient"
            if not _SMS_SENDER.fullmatch(message["sender"]):
                return "invalid_sender"
        elif not _EMAIL.fullmatch(to):
            return "invalid_recipient"
        if to.lower() in self.blocked_recipients:
            return "blocked_recipient"
        return None

    def _handle_fail(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            data = json.loads(raw or b"{}")
            count = int(data.get("count", 1))
            status = int(data.get("status", 503))
            retry_after = data.get("retry_after")
            retry = None if retry_after is None else float(retry_after)
        except (ValueError, TypeError, AttributeError) as exc:
            return 400, {"error": "bad request", "detail": str(exc)}
        if not 400 <= status <= 599:
            return 400, {"error": "bad request", "detail": "status must be an HTTP error (400-599)"}
        self.fail_next(count, status, retry)
        return 200, {"failing": count, "status": status}

    def _handle_outage(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """``{"seconds": 60, "status": 503}`` starts an outage; ``{"seconds": 0}`` ends it."""
        try:
            data = _control(raw)
            seconds = data.get("seconds")
            status = int(data.get("status", 503))
            duration = None if seconds is None else float(seconds)
        except (ValueError, TypeError) as exc:
            return 400, {"error": "bad request", "detail": str(exc)}
        if not 400 <= status <= 599:
            return 400, {"error": "bad request", "detail": "status must be an HTTP error (400-599)"}
        if duration is not None and duration <= 0:
            self.recover()
            return 200, {"down": False}
        self.outage(duration, status)
        return 200, {"down": True, "seconds": duration, "status": status}

    def _handle_throttle(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """``{"ratio": 0.8, "retry_after": 1}`` answers that share of requests 429."""
        try:
            data = _control(raw)
            self.throttle(float(data.get("ratio", 0)), float(data.get("retry_after", 1.0)))
        except (ValueError, TypeError) as exc:
            return 400, {"error": "bad request", "detail": str(exc)}
        return 200, {"throttling": data.get("ratio", 0)}


def _control(raw: bytes) -> dict[str, Any]:
    data = json.loads(raw or b"{}")
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _parse_batch(raw: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not JSON") from None
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    if len(messages) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} messages per request")
    for index, message in enumerate(messages):
        _check_message(index, message)
    return cast(list[dict[str, Any]], messages)


def _check_message(index: int, message: object) -> None:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise BadRequest(f"{where} must be an object")
    for name in _REQUIRED_TEXT_FIELDS:
        if not isinstance(message.get(name), str) or not message[name]:
            raise BadRequest(f"{where}.{name} is required")
    if message.get("channel") not in ("sms", "email"):
        raise BadRequest(f"{where}.channel must be sms or email")
    if message["channel"] == "email" and not isinstance(message.get("subject"), str):
        raise BadRequest(f"{where}.subject is required for email")
    for name in _OPTIONAL_TEXT_FIELDS:
        if message.get(name) is not None and not isinstance(message[name], str):
            raise BadRequest(f"{where}.{name} must be a string")
    headers = message.get("headers")
    if headers is not None and not (
        isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())
    ):
        raise BadRequest(f"{where}.headers must map names to strings")
    tags = message.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise BadRequest(f"{where}.tags must be a list of strings")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a fake LifeVision server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    parser.add_argument("--report-delay", type=float, default=0.2)
    parser.add_argument("--no-reports", action="store_true", help="send no delivery reports")
    parser.add_argument(
        "--block", action="append", default=[], metavar="ADDRESS", help="reject this recipient as blocked"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    fake = FakeLifeVision(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        webhook_secret=args.webhook_secret,
        send_reports=not args.no_reports,
        report_delay=args.report_delay,
        blocked_recipients=args.block,
    )
    serve(fake, "fake LifeVision listening on {fake.base_url}")


if __name__ == "__main__":
    main()
