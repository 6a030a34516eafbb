"""Bearer keys with roles (DESIGN §7): 401 without a valid key, 403 for the wrong role, and the
`create_api_key` command that shows a key once."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_create, api_key_revoke
from comms.contacts.models import Contact
from comms.suppression.models import ConsentEvent, Purpose, Suppression


def get(key: str | None, path: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return Client().get(f"/api/v1{path}", headers=headers)


# --- 401 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer cm_not-a-real-key"},
        {"Authorization": "Bearer not-even-the-prefix"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer cm_" + "x" * 500},
    ],
)
def test_a_missing_or_wrong_key_is_401(db, brand, headers):
    for path in ["/contacts", "/purposes", "/suppressions", "/ledger/verify", "/brands"]:
        response = Client().get(f"/api/v1{path}", headers=headers)
        assert response.status_code == 401, (path, response.content)
        assert response.json() == {"detail": "Unauthorized", "field": None}
    write = Client().post(
        "/api/v1/contacts",
        {"brand": "fit24", "kind": "member"},
        content_type="application/json",
        headers=headers,
    )
    assert write.status_code == 401
    assert not Contact.objects.exists()


def test_a_revoked_key_is_401(db):
    row, key = api_key_create(name="soon-revoked", role="dpo")
    assert get(key, "/contacts").status_code == 200
    api_key_revoke(api_key=row)
    assert get(key, "/contacts").status_code == 401


def test_the_key_itself_is_never_stored(db):
    row, key = api_key_create(name="hashed", role="staff")
    stored = ApiKey.objects.filter(pk=row.pk).values().get()
    assert key not in [str(value) for value in stored.values()]
    assert key.startswith(row.prefix)


def test_last_used_at_is_recorded(db):
    row, key = api_key_create(name="usage", role="marketer")
    assert row.last_used_at is None
    assert get(key, "/contacts").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None
    # An old stamp is moved forward by the next use.
    old = timezone.now() - dt.timedelta(days=3)
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=old)
    get(key, "/contacts")
    row.refresh_from_db()
    assert row.last_used_at is not None and row.last_used_at > old


# --- roles ----------------------------------------------------------------------------------


@pytest.fixture
def world(brand, contact, purpose) -> dict[str, Any]:
    from comms.suppression import services as ledger
    from comms.suppression.services import Principal

    _, bounce = ledger.suppression_add(
        channel="email",
        address="bounce@example.no",
        reason="hard_bounce",
        source="api",
        principal=Principal(actor="staff"),
    )
    assert bounce is not None
    return {"contact": contact.pk, "purpose": purpose.pk, "bounce": bounce.pk}


def operations(world: dict[str, Any]) -> dict[str, tuple[str, str, Any]]:
    c, p, s = world["contact"], world["purpose"], world["bounce"]
    return {
        "create contact": (
            "post",
            "/contacts",
            {"brand": "fit24", "kind": "lead", "email": "new@example.no"},
        ),
        "patch contact": ("patch", f"/contacts/{c}", {"first_name": "Rettet"}),
        "import": (
            "post",
            "/contacts/import",
            {"contacts": [{"brand": "fit24", "kind": "lead", "external_id": "i"}]},
        ),
        "visit": (
            "post",
            f"/contacts/{c}/visits",
            {"kind": "check_in", "occurred_at": "2025-06-01T10:00:00Z"},
        ),
        "create purpose": (
            "post",
            "/purposes",
            {"brand": "fit24", "key": "new-p", "name": "N", "channels": ["email"], "notice_text": "t"},
        ),
        "patch purpose": ("patch", f"/purposes/{p}", {"name": "Renamed"}),
        "publish notice": ("post", f"/purposes/{p}/notices", {"text": "A new text"}),
        "consent": (
            "post",
            "/consents",
            {"action": "grant", "contact_id": c, "channel": "email", "purpose": "fit24-newsletter"},
        ),
        "objection": ("post", "/objections", {"contact_id": c}),
        "suppress": (
            "post",
            "/suppressions",
            {"address": "x@example.no", "channel": "email", "reason": "complaint"},
        ),
        "lift": ("post", f"/suppressions/{s}/lift", {}),
        "verify": ("get", "/ledger/verify", None),
        "list contacts": ("get", "/contacts", None),
        "get contact": ("get", f"/contacts/{c}", None),
        "consents of contact": ("get", f"/contacts/{c}/consents", None),
        "check": ("get", f"/check?contact_id={c}&channel=email&purpose=fit24-newsletter", None),
        "list suppressions": ("get", "/suppressions", None),
        "list purposes": ("get", "/purposes", None),
    }


READS = {"list contacts", "get contact", "consents of contact", "check", "list suppressions", "list purposes"}
ALLOWED = {
    "marketer": READS | {"create purpose", "patch purpose", "publish notice"},
    "staff": READS
    | {"create contact", "patch contact", "import", "visit", "consent", "objection", "suppress", "lift"},
    "dpo": READS
    | {
        "create contact",
        "patch contact",
        "import",
        "visit",
        "create purpose",
        "patch purpose",
        "publish notice",
        "consent",
        "objection",
        "suppress",
        "lift",
        "verify",
    },
    "system": READS
    | {
        "create contact",
        "patch contact",
        "import",
        "visit",
        "create purpose",
        "patch purpose",
        "publish notice",
        "consent",
        "objection",
        "suppress",
        "verify",
    },
}


def _state() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Purpose.objects.count(),
        ConsentEvent.objects.count(),
        Suppression.objects.filter(lifted_at__isnull=True).count(),
    )


@pytest.mark.parametrize("role", ["marketer", "staff", "dpo", "system"])
def test_each_role_may_do_what_it_needs_and_nothing_else(api, world, role):
    client = api(role)
    for name, (method, path, body) in operations(world).items():
        before = _state()
        if method == "get":
            response = client.client.get(f"/api/v1{path}", headers=client._headers())
        elif method == "post":
            response = client.post(path, body)
        else:
            response = client.patch(path, body)
        if name in ALLOWED[role]:
            assert response.status_code in (200, 201), (role, name, response.status_code, response.content)
        else:
            assert response.status_code == 403, (role, name, response.status_code, response.content)
            assert response.json()["detail"].startswith("this needs one of the roles: ")
            assert role not in response.json()["detail"]
            assert _state() == before, (role, name)


# --- create_api_key -------------------------------------------------------------------------


def test_create_api_key_prints_only_the_key_and_it_authenticates(db, brand):
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "--role", "staff", "--name", "front-desk", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    key = lines[0]
    assert key.startswith("cm_") and len(key) > 40 and key.strip() == key
    row = ApiKey.objects.get(name="front-desk")
    assert (row.role, row.revoked_at) == ("staff", None)
    assert get(key, "/contacts").status_code == 200
    created = Client().post(
        "/api/v1/contacts",
        {"brand": "fit24", "kind": "guest"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert created.status_code == 201
    forbidden = Client().get("/api/v1/ledger/verify", headers={"Authorization": f"Bearer {key}"})
    assert forbidden.status_code == 403
    # Each run makes a different key.
    call_command("create_api_key", "--role", "staff", "--name", "front-desk-2", stdout=(second := StringIO()))
    assert second.getvalue().strip() != key


def test_create_api_key_refuses_a_duplicate_name(db):
    call_command("create_api_key", "--role", "dpo", "--name", "dup", stdout=StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_api_key", "--role", "system", "--name", "dup", stdout=StringIO())
    assert ApiKey.objects.filter(name="dup").count() == 1
    assert ApiKey.objects.get(name="dup").role == "dpo"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "admin", "--name", "x"], "invalid choice"),
        (["--name", "x"], "--role"),
        (["--role", "staff"], "--name"),
        (["--role", "staff", "--name", "   "], "1 to 100 characters"),
        (["--role", "staff", "--name", "n" * 101], "1 to 100 characters"),
    ],
)
def test_create_api_key_usage_errors(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=StringIO(), stderr=StringIO())
    assert not ApiKey.objects.exists()
