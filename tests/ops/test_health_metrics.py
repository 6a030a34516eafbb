from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.test import Client

from comms.ops import views as ops_views

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-0123456789abcdef"


@pytest.mark.django_db
def test_healthz_ok(client: Client, settings: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    if settings.REDIS_URL:
        assert body["checks"]["redis"] == "ok"


@pytest.mark.django_db
def test_healthz_503_when_database_fails(client: Client) -> None:
    from django.db import OperationalError

    with mock.patch.object(ops_views, "check_database", side_effect=OperationalError("secret-host down")):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "error: OperationalError"
    assert "secret-host" not in response.content.decode()


@pytest.mark.django_db
def test_healthz_503_when_redis_fails(client: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error:")
    assert response.json()["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_healthz_without_redis_checks_database_only(client: Client, settings: Any) -> None:
    settings.REDIS_URL = None
    response = client.get("/healthz")
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database"}


@pytest.mark.django_db
def test_metrics_refused_without_token(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = TOKEN
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert b"comms_" not in response.content
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_metrics_disabled_without_configured_token(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = None
    response = client.get("/metrics", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert b"comms_" not in response.content


@pytest.mark.django_db
def test_metrics_content(client: Client, settings: Any, contact: Any, purpose: Any, staff: Any) -> None:
    from comms.suppression import services as ledger
    from comms.suppression.gate import check_many

    settings.METRICS_TOKEN = TOKEN
    ledger.consent_withdraw(contact=contact, channel="email", purpose=purpose, source="api", principal=staff)
    check_many(contacts=[contact], channel="email", purpose=purpose)
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    text = response.content.decode()
    assert 'comms_gate_decisions_total{allowed="false",channel="email",reason="withdrawn"}' in text
    assert "comms_gate_check_seconds_bucket" in text
    assert "comms_messages" in text
    assert 'comms_queue_depth{queue="deliveries_queued"}' in text
    assert "comms_withdrawals_24h 1.0" in text
    assert "comms_withdrawal_to_effect_seconds_max_24h" in text
    assert "comms_provider_errors" in text
    assert "comms_metrics_db_up 1.0" in text


@pytest.mark.django_db
def test_metrics_count_messages_by_status_and_reason(client: Client, settings: Any) -> None:
    from comms.ops import scrape

    settings.METRICS_TOKEN = TOKEN
    figures = {"messages": [("sms", "blocked", "withdrawn", 3)], "withdrawals": (0, 0.0, 0.0)}
    with mock.patch.object(scrape, "_db_figures", return_value=figures):
        text = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).content.decode()
    assert 'comms_messages{channel="sms",reason="withdrawn",status="blocked"} 3.0' in text


def test_provider_errors_counted() -> None:
    from comms.campaigns import providers, sending
    from comms.core.metrics import PROVIDER_ERRORS
    from integrations.errors import IntegrationError

    before = PROVIDER_ERRORS.labels(provider="lifevision", kind="transient")._value.get()
    lifevision = providers.get("lifevision")
    with (
        mock.patch.object(lifevision, "send_batch", side_effect=IntegrationError("down", permanent=False)),
        pytest.raises(IntegrationError),
    ):
        sending._send("lifevision", [mock.Mock()])
    assert PROVIDER_ERRORS.labels(provider="lifevision", kind="transient")._value.get() == before + 1


def _production_env() -> dict[str, str]:
    owner_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/comms")
    host, port = urlsplit(owner_url).hostname, urlsplit(owner_url).port or 5432
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COMMS_"))}
    env.update(
        COMMS_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        COMMS_ADDRESS_KEY_SECRET=secrets.token_urlsafe(40),
        DJANGO_ALLOWED_HOSTS="comms.example.no",
        COMMS_PUBLIC_BASE_URL="https://comms.example.no",
        COMMS_METRICS_TOKEN=secrets.token_urlsafe(24),
        # Two roles: migrations as the owner, the service as a restricted role (docs/deploy.md).
        DATABASE_MIGRATE_URL=owner_url,
        DATABASE_URL=urlsplit(owner_url)._replace(netloc=f"comms_app@{host}:{port}").geturl(),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    )
    return env


def test_check_deploy_is_clean_in_production() -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_missing_secrets() -> None:
    env = _production_env()
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
