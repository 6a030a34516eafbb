from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from comms.accounts.models import ApiKey, ApiKeyUsage
from comms.accounts.services import api_key_create


def _assert_security_headers(response: Any) -> None:
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "script-src 'self' 'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.django_db
def test_security_headers_on_api_docs_admin_and_member_pages(client: Client) -> None:
    for path in ("/api/v1/docs", "/admin/login/", "/u/lost", "/u/not-a-valid-token", "/healthz"):
        response = client.get(path)
        assert response.status_code in (200, 400, 404, 410), path
        _assert_security_headers(response)


@pytest.fixture
def admin_user(db: Any) -> User:
    cache.clear()
    return User.objects.create_superuser("boss", "", "a-Very-long-passphrase-42")


def _login(client: Client, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return client.post("/admin/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_admin_login_locked_after_failures(admin_user: User, settings: Any) -> None:
    settings.ADMIN_LOGIN_LIMIT_PER_USERNAME = (3, 900)
    client = Client()
    for _ in range(3):
        assert _login(client, "boss", "wrong", ip="10.0.0.1").status_code == 200
    # The right password is refused too, from any IP, while the username is locked.
    response = _login(client, "boss", "a-Very-long-passphrase-42", ip="10.0.0.9")
    assert response.status_code == 429
    assert "Retry-After" in response
    # Another username is not affected.
    assert _login(client, "other", "wrong", ip="10.0.0.9").status_code == 200


def test_admin_login_locked_per_ip(admin_user: User, settings: Any) -> None:
    settings.ADMIN_LOGIN_LIMIT_PER_IP = (4, 900)
    client = Client()
    for n in range(4):
        assert _login(client, f"user{n}", "wrong", ip="10.0.0.2").status_code == 200
    assert _login(client, "boss", "a-Very-long-passphrase-42", ip="10.0.0.2").status_code == 429
    assert _login(client, "boss", "a-Very-long-passphrase-42", ip="10.0.0.3").status_code == 302


def test_successful_login_resets_username_counter(admin_user: User, settings: Any) -> None:
    settings.ADMIN_LOGIN_LIMIT_PER_USERNAME = (3, 900)
    client = Client()
    _login(client, "boss", "wrong")
    _login(client, "boss", "wrong")
    assert _login(client, "boss", "a-Very-long-passphrase-42").status_code == 302
    client.logout()
    _login(client, "boss", "wrong")
    _login(client, "boss", "wrong")
    assert _login(client, "boss", "a-Very-long-passphrase-42").status_code == 302


def test_password_rules_are_strong() -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    for weak in ("short1!", "password1234", "123456789012345"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("correct-horse-battery-staple")


def _run(name: str, *args: str) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_api_key_rotate_and_revoke(client: Client) -> None:
    cache.clear()
    _, old = api_key_create(name="crm", role="staff")
    headers = {"Authorization": f"Bearer {old}"}
    assert client.get("/api/v1/contacts", headers=headers).status_code == 200

    new = _run("rotate_api_key", "--name", "crm").strip()
    assert new.startswith("cm_") and new != old
    assert client.get("/api/v1/contacts", headers=headers).status_code == 401
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {new}"}).status_code == 200

    listing = _run("list_api_keys")
    assert "crm" in listing and "rotated" in listing and new[:10] in listing
    assert old not in listing and new not in listing

    assert "revoked crm" in _run("revoke_api_key", "--name", "crm")
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {new}"}).status_code == 401
    assert "crm" not in _run("list_api_keys")
    assert "revoked" in _run("list_api_keys", "--all")
    with pytest.raises(CommandError):
        _run("rotate_api_key", "--name", "crm")
    with pytest.raises(CommandError):
        _run("revoke_api_key", "--name", "nobody")


@pytest.mark.django_db
def test_api_key_uses_are_counted_cheaply(client: Client, django_assert_max_num_queries: Any) -> None:
    cache.clear()
    row, key = api_key_create(name="counter", role="staff")
    headers = {"Authorization": f"Bearer {key}"}
    for _ in range(5):
        assert client.get("/api/v1/contacts", headers=headers).status_code == 200
    row.refresh_from_db()
    # The first use is written at once; the next four wait in the cache until the minute is up.
    assert row.use_count == 1 and row.last_used_at is not None
    assert "counter" in _run("list_api_keys")  # listing flushes the pending counts
    row.refresh_from_db()
    assert row.use_count == 5
    assert sum(ApiKeyUsage.objects.filter(api_key=row).values_list("count", flat=True)) == 5
    assert ApiKey.objects.get(pk=row.pk).use_count == 5


@pytest.mark.django_db
def test_api_key_endpoints_are_dpo_only(api: Any, client: Client) -> None:
    cache.clear()
    row, old = api_key_create(name="shop", role="marketer")
    for role in ("marketer", "staff", "system"):
        assert api(role).get("/api-keys").status_code == 403
        assert api(role).post(f"/api-keys/{row.pk}/rotate").status_code == 403
    listing = api("dpo").get("/api-keys")
    assert listing.status_code == 200
    names = {item["name"]: item for item in listing.json()}
    assert names["shop"]["prefix"] == old[:10] and "key_hash" not in names["shop"]
    rotated = api("dpo").post(f"/api-keys/{row.pk}/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["key"]
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    revoked = api("dpo").post(f"/api-keys/{row.pk}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {new}"}).status_code == 401
    assert api("dpo").post(f"/api-keys/{row.pk}/rotate").status_code == 409
    assert api("dpo").post("/api-keys/999999/revoke").status_code == 404
