"""A fake Mailchimp Marketing API (the endpoints comms uses), for tests and local runs.

Run it with ``python -m integrations.mailchimp.fake --port 8026`` or use ``FakeMailchimp`` in a
test. It follows Mailchimp's status rules: an unsubscribed or cleaned member cannot be PUT back
to ``subscribed`` (400 "Member In Compliance State"; ``pending`` is allowed), and a permanently
deleted address cannot be re-added (400 "Forgotten Email Not Subscribed", GET answers 404).
Errors are ``application/problem+json`` like the real API. It keeps every request
(``.requests``), fails on request (``.fail_next``, ``POST /_fake/fail``) and records what each
campaign was sent to (``.sent``). Control: ``GET /_fake/state``, ``POST /_fake/reset``.

Longer than 400 lines: the Mailchimp endpoints comms uses as a test double, with Mailchimp's
status rules, which tests read as one file. The HTTP plumbing is ``integrations.fakeserver``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from integrations.fakeserver import FakeRequest, FakeResponse, FakeServer, serve

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "fake-mailchimp-key-us21"
DEFAULT_LIST_ID = "fakelist01"
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
_MEMBER = re.compile(r"^/3\.0/lists/([^/]+)/members/([^/]+)$")
_FORGET = re.compile(r"^/3\.0/lists/([^/]+)/members/([^/]+)/actions/delete-permanent$")
_MEMBERS = re.compile(r"^/3\.0/lists/([^/]+)/members$")
_BATCH = re.compile(r"^/3\.0/lists/([^/]+)$")
_SEGMENTS = re.compile(r"^/3\.0/lists/([^/]+)/segments$")
_SEGMENT = re.compile(r"^/3\.0/lists/([^/]+)/segments/(\d+)$")
_SEGMENT_MEMBERS = re.compile(r"^/3\.0/lists/([^/]+)/segments/(\d+)/members$")
_CAMPAIGNS = "/3.0/campaigns"
_CONTENT = re.compile(r"^/3\.0/campaigns/([^/]+)/content$")
_SEND = re.compile(r"^/3\.0/campaigns/([^/]+)/actions/send$")


def _hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class _Failure:
    status: int
    empty: bool


@dataclass
class _Reply:
    status: int
    payload: Any = None
    problem: bool = False


@dataclass
class FakeList:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)


def _problem(status: int, title: str, detail: str) -> _Reply:
    return _Reply(
        status,
        {
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
        },
        problem=True,
    )


class FakeMailchimp(FakeServer):
    """An in-process Mailchimp on a background thread; ``port=0`` picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        lists: tuple[str, ...] = (DEFAULT_LIST_ID,),
    ) -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self._lock = threading.Lock()
        self.lists: dict[str, FakeList] = {list_id: FakeList() for list_id in lists}
        self.campaigns: dict[str, dict[str, Any]] = {}
        self._requests: list[dict[str, Any]] = []
        self._failures: list[_Failure] = []
        self._down: _Failure | None = None
        self._next_segment = 1

    name: ClassVar[str] = "FakeMailchimp"

    def respond(self, request: FakeRequest) -> FakeResponse:
        if request.path == "/_fake/state" and request.method == "GET":
            return _response(_Reply(200, self.state()))
        if request.path == "/_fake/reset" and request.method == "POST":
            self.reset()
            return _response(_Reply(200, {}))
        if request.path == "/_fake/fail" and request.method == "POST":
            data = json.loads(request.body or b"{}")
            self.fail_next(
                int(data.get("count", 1)), int(data.get("status", 503)), empty=bool(data.get("empty", True))
            )
            return _response(_Reply(200, {"failing": data.get("count", 1)}))
        return _response(self.handle(request.method, request.target, request.headers, request.body))

    # --- inspection and set-up ------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received (method, path, query, body), failed ones included."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.lists[list_id].members.get(_hash(email))
            return dict(found) if found else None

    def status_of(self, list_id: str, email: str) -> str | None:
        member = self.member(list_id, email)
        return None if member is None else str(member["status"])

    def put_member(self, list_id: str, email: str, status: str, last_changed: str | None = None) -> None:
        """Plant a member as if someone had changed it inside Mailchimp (no status rules)."""
        with self._lock:
            self.lists[list_id].members[_hash(email)] = self._new_member(list_id, email, status, last_changed)

    def forget(self, list_id: str, email: str) -> None:
        """What ``delete-permanent`` does: the address is gone and can never be re-added."""
        with self._lock:
            self.lists[list_id].members.pop(_hash(email), None)
            self.lists[list_id].forgotten.add(_hash(email))

    def segment_emails(self, list_id: str, segment_id: int | str) -> set[str]:
        with self._lock:
            members = self.lists[list_id].members
            return {
                members[h]["email_address"] for h in self.lists[list_id].segments[int(segment_id)]["members"]
            }

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Campaigns sent: id, list, segment and the addresses (subscribed at send time) it reached."""
        with self._lock:
            return [dict(c) for c in self.campaigns.values() if c.get("status") == "sent"]

    def fail_next(self, n: int, status: int = 503, *, empty: bool = True) -> None:
        """Answer the next ``n`` API requests with ``status`` (empty-bodied by default, as a real
        overloaded Mailchimp does), changing nothing."""
        with self._lock:
            self._failures.extend(_Failure(status, empty) for _ in range(n))

    def outage(self, status: int = 503) -> None:
        """Answer every API request with ``status`` (empty-bodied) until ``recover``."""
        with self._lock:
            self._down = _Failure(status, True)

    def recover(self) -> None:
        with self._lock:
            self._down = None
            self._failures.clear()

    def reset(self) -> None:
        with self._lock:
            self._down = None
            for list_id in list(self.lists):
                self.lists[list_id] = FakeList()
            self.campaigns.clear()
            self._requests.clear()
            self._failures.clear()

    # --- the API --------------------------------------------------------------------------
    def _new_member(
        self, list_id: str, email: str, status: str, last_changed: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": _hash(email),
            "email_address": email,
            "status": status,
            "list_id": list_id,
            "merge_fields": {},
            "last_changed": last_changed or _now(),
        }

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> _Reply:
        split = urlsplit(raw_path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "__invalid__"
        with self._lock:
            self._requests.append({"method": method, "path": path, "query": query, "body": body})
            failure = self._failures.pop(0) if self._failures else self._down
        if failure is not None:
            if failure.empty:
                return _Reply(failure.status)
            return _problem(failure.status, "Injected Failure", "the fake was told to fail")
        if body == "__invalid__":
            return _problem(400, "JSON Parse Error", "We encountered an unspecified JSON parsing error.")
        if not self._authorised(headers.get("authorization", "")):
            return _problem(401, "API Key Invalid", "Your API key may be invalid.")
        with self._lock:
            return self._route(method, path, query, body)

    def _authorised(self, header: str) -> bool:
        import base64

        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except ValueError:
            return False
        return decoded.partition(":")[2] == self.api_key

    def _list(self, list_id: str) -> FakeList | None:
        return self.lists.get(list_id)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> _Reply:
        if path == "/3.0/ping" and method == "GET":
            return _Reply(200, {"health_status": "Everything's Chimpy!"})
        for pattern, handler in (
            (_FORGET, self._forget),
            (_MEMBER, self._member),
            (_MEMBERS, self._members),
            (_BATCH, self._batch),
            (_SEGMENTS, self._segments),
            (_SEGMENT, self._segment),
            (_SEGMENT_MEMBERS, self._segment_members),
        ):
            match = pattern.match(path)
            if match:
                fake_list = self._list(match.group(1))
                if fake_list is None:
                    return _problem(404, "Resource Not Found", "The requested resource could not be found.")
                return handler(method, fake_list, match, query, body)
        if path == _CAMPAIGNS and method == "POST":
            return self._campaign_create(body)
        for pattern, campaign_handler in ((_CONTENT, self._content), (_SEND, self._send)):
            match = pattern.match(path)
            if match:
                campaign = self.campaigns.get(match.group(1))
                if campaign is None:
                    return _problem(404, "Resource Not Found", "The requested resource could not be found.")
                return campaign_handler(method, campaign, body)
        return _problem(404, "Resource Not Found", "The requested resource could not be found.")

    def _member(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        key = unquote(match.group(2))
        key = _hash(key) if "@" in key else key
        existing = fake_list.members.get(key)
        if method == "GET":
            return (
                _Reply(200, existing)
                if existing
                else _problem(404, "Resource Not Found", "The requested resource could not be found.")
            )
        if method not in ("PUT", "PATCH"):
            return _problem(
                405, "Method Not Allowed", "The requested method and resource are not compatible."
            )
        if not isinstance(body, dict):
            return _problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        email = body.get("email_address") or (existing or {}).get("email_address")
        if not isinstance(email, str) or "@" not in email:
            return _problem(400, "Invalid Resource", "Required fields were not provided: email_address")
        if _hash(email) != key:
            return _problem(
                400,
                "Member Exists",
                f"{email} is already a list member. Use PUT to insert or update list members.",
            )
        if key in fake_list.forgotten:
            return _problem(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list.",
            )
        if existing is None:
            if method == "PATCH":
                return _problem(404, "Resource Not Found", "The requested resource could not be found.")
            status = body.get("status_if_new") or body.get("status")
            if status not in STATUSES:
                return _problem(
                    400, "Invalid Resource", "status_if_new must be one of " + ", ".join(STATUSES)
                )
            member = self._new_member(fake_list_id(fake_list, self.lists), email, status)
        else:
            member = existing
            status = body.get("status")
            if status is not None:
                if status not in STATUSES:
                    return _problem(400, "Invalid Resource", "status must be one of " + ", ".join(STATUSES))
                if status == "subscribed" and member["status"] in ("unsubscribed", "cleaned"):
                    return _problem(
                        400,
                        COMPLIANCE_TITLE,
                        f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed.",
                    )
                if status != member["status"]:
                    member["status"] = status
                    member["last_changed"] = _now()
        if isinstance(body.get("merge_fields"), dict):
            member["merge_fields"] = {**member["merge_fields"], **body["merge_fields"]}
        fake_list.members[key] = member
        return _Reply(200, dict(member))

    def _forget(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        key = unquote(match.group(2))
        key = _hash(key) if "@" in key else key
        if method != "POST" or key not in fake_list.members:
            return _problem(404, "Resource Not Found", "The requested resource could not be found.")
        del fake_list.members[key]
        fake_list.forgotten.add(key)
        for segment in fake_list.segments.values():
            segment["members"].discard(key)
        return _Reply(204)

    def _members(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        if method != "GET":
            return _problem(
                405, "Method Not Allowed", "The requested method and resource are not compatible."
            )
        found = [
            m for m in fake_list.members.values() if not query.get("status") or m["status"] == query["status"]
        ]
        since = query.get("since_last_changed")
        if since:
            cutoff = datetime.fromisoformat(since)
            found = [m for m in found if datetime.fromisoformat(m["last_changed"]) >= cutoff]
        found.sort(key=lambda m: (m["last_changed"], m["id"]))
        offset, count = int(query.get("offset", 0)), int(query.get("count", 10))
        return _Reply(
            200, {"members": [dict(m) for m in found[offset : offset + count]], "total_items": len(found)}
        )

    def _batch(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        if method != "POST" or not isinstance(body, dict) or not isinstance(body.get("members"), list):
            return _problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        if len(body["members"]) > 500:
            return _problem(400, "Invalid Resource", "at most 500 members per request")
        created, errors = [], []
        for entry in body["members"]:
            email = entry.get("email_address", "") if isinstance(entry, dict) else ""
            key = _hash(email)
            if key in fake_list.forgotten:
                errors.append(
                    {
                        "email_address": email,
                        "error": f"{email} was permanently deleted",
                        "error_code": "ERROR_CONTACT_EXISTS",
                    }
                )
            elif key in fake_list.members:
                if body.get("update_existing") and entry.get("status") and entry["status"] != "subscribed":
                    fake_list.members[key]["status"] = entry["status"]
            elif entry.get("status") not in STATUSES:
                errors.append(
                    {"email_address": email, "error": "invalid status", "error_code": "ERROR_GENERIC"}
                )
            else:
                member = self._new_member(match.group(1), email, entry["status"])
                fake_list.members[key] = member
                created.append(dict(member))
        return _Reply(
            200,
            {
                "new_members": created,
                "updated_members": [],
                "errors": errors,
                "total_created": len(created),
                "total_updated": 0,
                "error_count": len(errors),
            },
        )

    def _segments(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        if method != "POST" or not isinstance(body, dict) or not body.get("name"):
            return _problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        segment_id = self._next_segment
        self._next_segment += 1
        emails = body.get("static_segment") or []
        members = {_hash(e) for e in emails if _hash(e) in fake_list.members}
        fake_list.segments[segment_id] = {"id": segment_id, "name": body["name"], "members": members}
        return _Reply(
            200, {"id": segment_id, "name": body["name"], "member_count": len(members), "type": "static"}
        )

    def _segment(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        segment = fake_list.segments.get(int(match.group(2)))
        if segment is None:
            return _problem(404, "Resource Not Found", "The requested resource could not be found.")
        if method != "POST" or not isinstance(body, dict):
            return _problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        to_add, to_remove = body.get("members_to_add") or [], body.get("members_to_remove") or []
        if len(to_add) > 500 or len(to_remove) > 500:
            return _problem(400, "Invalid Resource", "at most 500 members per request")
        # Emails that are not on the list are silently ignored, as Mailchimp does.
        added = [e for e in to_add if _hash(e) in fake_list.members]
        removed = [e for e in to_remove if _hash(e) in segment["members"]]
        segment["members"].update(_hash(e) for e in added)
        segment["members"].difference_update(_hash(e) for e in removed)
        return _Reply(200, {"total_added": len(added), "total_removed": len(removed), "errors": []})

    def _segment_members(
        self, method: str, fake_list: FakeList, match: re.Match[str], query: dict[str, str], body: Any
    ) -> _Reply:
        segment = fake_list.segments.get(int(match.group(2)))
        if segment is None:
            return _problem(404, "Resource Not Found", "The requested resource could not be found.")
        members = [dict(fake_list.members[h]) for h in sorted(segment["members"])]
        return _Reply(200, {"members": members, "total_items": len(members)})

    def _campaign_create(self, body: Any) -> _Reply:
        recipients = body.get("recipients") if isinstance(body, dict) else None
        if not isinstance(recipients, dict) or recipients.get("list_id") not in self.lists:
            return _problem(400, "Invalid Resource", "recipients.list_id is not a list")
        campaign_id = uuid.uuid4().hex[:10]
        segment_id = (recipients.get("segment_opts") or {}).get("saved_segment_id")
        self.campaigns[campaign_id] = {
            "id": campaign_id,
            "list_id": recipients["list_id"],
            "segment_id": segment_id,
            "settings": body.get("settings") or {},
            "status": "save",
            "content": None,
        }
        return _Reply(200, {"id": campaign_id, "status": "save"})

    def _content(self, method: str, campaign: dict[str, Any], body: Any) -> _Reply:
        if method != "PUT" or not isinstance(body, dict):
            return _problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        campaign["content"] = body
        return _Reply(200, {"html": body.get("html", ""), "plain_text": body.get("plain_text", "")})

    def _send(self, method: str, campaign: dict[str, Any], body: Any) -> _Reply:
        if campaign["status"] != "save" or not campaign["content"]:
            return _problem(400, "Bad Request", "Your Campaign is not ready to send.")
        fake_list = self.lists[campaign["list_id"]]
        hashes = (
            fake_list.segments.get(int(campaign["segment_id"]), {}).get("members", set())
            if campaign["segment_id"] is not None
            else set(fake_list.members)
        )
        # Unsubscribed and cleaned members of a segment are skipped at send time.
        campaign["recipients"] = sorted(
            fake_list.members[h]["email_address"]
            for h in hashes
            if fake_list.members[h]["status"] == "subscribed"
        )
        campaign["status"] = "sent"
        campaign["sent_at"] = _now()
        return _Reply(204)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "lists": {
                    list_id: {"members": list(fl.members.values()), "forgotten": sorted(fl.forgotten)}
                    for list_id, fl in self.lists.items()
                },
                "campaigns": [{k: v for k, v in c.items()} for c in self.campaigns.values()],
            }


COMPLIANCE_TITLE = "Member In Compliance State"


def fake_list_id(fake_list: FakeList, lists: dict[str, FakeList]) -> str:
    return next(list_id for list_id, candidate in lists.items() if candidate is fake_list)


def _response(reply: _Reply) -> FakeResponse:
    # Real errors are problem+json, which the client does not parse (its .text stays raw);
    # successes must say application/json or the client returns a raw Response.
    content_type = "application/problem+json; charset=utf-8" if reply.problem else "application/json; charset=utf-8"
    return FakeResponse.json(reply.status, reply.payload, content_type=content_type)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a fake Mailchimp Marketing API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--list", action="append", dest="lists", help="audience id (repeatable)")
    args = parser.parse_args()
    fake = FakeMailchimp(args.host, args.port, args.api_key, tuple(args.lists or [DEFAULT_LIST_ID]))
    serve(fake, f"fake Mailchimp on {{fake.base_url}} (key {fake.api_key}, lists {', '.join(fake.lists)})")


if __name__ == "__main__":
    main()
