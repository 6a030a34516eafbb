"""Shared fixtures. The suite runs on PostgreSQL (bin/test sets DATABASE_URL): the locks and the
append-only ledger are the product and are tested where they really run."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from comms.accounts.services import api_key_create
from comms.contacts.models import Brand, Centre, Contact
from comms.contacts.services import ContactInput, contact_create
from comms.suppression import services as ledger
from comms.suppression.models import Purpose
from comms.suppression.services import Principal
from tests import db_owner

pytest_plugins = ["tests.logcheck"]  # fails the run on any raw address in the logs (tests/ops)

def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("COMMS_ALLOW_SQLITE_TESTS") != "1":
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if engine != "django.db.backends.postgresql":
            raise pytest.UsageError(
                "the test suite runs on PostgreSQL: run bin/test (or set DATABASE_URL=postgres://…)"
            )


@pytest.fixture(autouse=True)
def _fresh_provider_health() -> Iterator[None]:
    """Every test starts with closed circuits, no throttle and full rates (integrations.health)."""
    from integrations import health

    health.reset()
    yield
    health.reset()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django creates and migrates the test database as the owner (bin/test's superuser);
    then the whole suite runs as the restricted service role (tests/db_owner.py)."""
    if connection.vendor != "postgresql":
        yield
        return
    with ExitStack() as stack:
        with django_db_blocker.unblock():
            stack.enter_context(db_owner.running_as_service_role())
        yield
        with django_db_blocker.unblock():
            stack.close()


@pytest.fixture
def brand(db: Any) -> Brand:
    brand = Brand.objects.create(
        key="fit24", name="FIT24", sms_sender="FIT24", email_from="FIT24 <n@fit24.example>"
    )
    Centre.objects.create(brand=brand, key="oslo", name="Oslo")
    return brand


@pytest.fixture
def other_brand(db: Any) -> Brand:
    return Brand.objects.create(key="klinikk24", name="Klinikk24", sms_sender="Klinikk24")


@pytest.fixture
def make_purpose(brand: Brand) -> Callable[..., Purpose]:
    def make(
        key: str = "fit24-newsletter", channels: tuple[str, ...] = ("email", "sms"), **extra: Any
    ) -> Purpose:
        return ledger.purpose_create(
            brand=extra.pop("brand", brand),
            key=key,
            name=key,
            channels=channels,
            notice_text=extra.pop("notice_text", f"Notice for {key}"),
            **extra,
        )

    return make


@pytest.fixture
def purpose(make_purpose: Callable[..., Purpose]) -> Purpose:
    return make_purpose()


_counter = {"n": 0}


@pytest.fixture
def make_contact(brand: Brand) -> Callable[..., Contact]:
    def make(**fields: Any) -> Contact:
        _counter["n"] += 1
        n = _counter["n"]
        data = ContactInput(
            brand=fields.pop("brand", brand.key),
            kind=fields.pop("kind", "member"),
            email=fields.pop("email", f"person{n}@example.no"),
            mobile=fields.pop("mobile", f"+47412{n % 100000:05d}"),
        )
        for name, value in fields.items():
            setattr(data, name, value)
        return contact_create(data=data)

    return make


@pytest.fixture
def contact(make_contact: Callable[..., Contact]) -> Contact:
    return make_contact()


@pytest.fixture
def staff() -> Principal:
    return Principal(actor="staff", recorded_by="test")


@pytest.fixture
def person() -> Principal:
    return Principal(actor="self", recorded_by="test")


@pytest.fixture
def api_keys(db: Any) -> dict[str, str]:
    return {
        role: api_key_create(name=f"test-{role}", role=role)[1]
        for role in ("marketer", "staff", "dpo", "system")
    }


class ApiClient:
    """JSON client for /api/v1 with a bearer key."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.key = key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api/v1{path}", params, headers=self._headers())

    def post(self, path: str, body: Any = None, raw: str | None = None) -> Any:
        data = raw if raw is not None else ({} if body is None else body)
        return self.client.post(
            f"/api/v1{path}", data, content_type="application/json", headers=self._headers()
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            f"/api/v1{path}", body, content_type="application/json", headers=self._headers()
        )


@pytest.fixture
def api(api_keys: dict[str, str]) -> Callable[[str | None], ApiClient]:
    def make(role: str | None = "system") -> ApiClient:
        return ApiClient(api_keys[role] if role else None)

    return make


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
