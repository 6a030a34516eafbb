"""Property-based run of schemathesis over the whole OpenAPI document, in-process against the
Django WSGI app: whatever a client sends, no operation may answer with a server error, and each
answer must be one the document declares, in the shape it declares.

The database is seeded once for the module and every request commits (autocommit, as in
production): a database error inside one request is not hidden by, and does not poison, an outer
test transaction. The module flushes the database before and after itself, so ids start at 1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from comms.accounts.services import api_key_create
from comms.contacts.models import Brand, Centre
from comms.contacts.services import ContactInput, contact_create
from comms.suppression import services as ledger
from comms.suppression.services import Principal
from comms.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def _seed() -> str:
    """Two brands, a centre, a purpose with two notice versions, contacts with a guardian link,
    a grant, a pending grant, a suppression: rows 1.. exist in every table the API reads."""
    staff = Principal(actor="staff", recorded_by="seed")
    brand = Brand.objects.create(key="fit24", name="FIT24", sms_sender="FIT24")
    Brand.objects.create(key="klinikk24", name="Klinikk24")
    Centre.objects.create(brand=brand, key="oslo", name="Oslo")
    purpose = ledger.purpose_create(
        brand=brand, key="fit24-newsletter", name="News", channels=["email", "sms"], notice_text="v1"
    )
    ledger.purpose_notice_publish(purpose=purpose, text="v2")
    parent = contact_create(
        data=ContactInput(brand="fit24", kind="member", email="seed@example.no", mobile="+4741234567")
    )
    contact_create(
        data=ContactInput(
            brand="fit24", kind="guest", external_id="g-1", email="kid@example.no", guardian_id=parent.pk
        )
    )
    ledger.consent_grant(
        contact=parent,
        channel="email",
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=staff,
    )
    ledger.consent_grant(
        contact=parent, channel="sms", purpose=purpose, basis="consent", source="web_form", principal=staff
    )
    ledger.suppression_add(
        channel="email", address="bounced@example.no", reason="hard_bounce", source="api", principal=staff
    )
    return api_key_create(name="fuzz-system", role="system")[1]


@pytest.fixture(scope="module")
def system_key(django_db_setup: Any, django_db_blocker: Any) -> Iterator[str]:
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        try:
            yield _seed()
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def db(system_key: str, django_db_blocker: Any) -> Iterator[str]:
    """This module's own ``db``: asking for a fixture of that name is what makes pytest-django
    create the test database, but here there is no test transaction around the requests; they
    commit against the module's seeded database, as they would in production."""
    with django_db_blocker.unblock():
        yield system_key


@schema.parametrize()
@FUZZ
def test_no_operation_answers_with_a_server_error(case: Any, db: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {db}"}, checks=CHECKS)


def test_every_operation_needs_a_key(db: str) -> None:
    """Every operation in the document, with ids that exist and a body that would be valid for
    some of them, answers 401 without a key, and 401 with a key that is not one."""
    document = Client().get("/api/v1/openapi.json").json()
    operations = [(method, path) for path, item in document["paths"].items() for method in item]
    # The public sign-up (comms/web/api.py) is the one operation a brand's website calls without
    # a key; it documents no security requirement.
    public = [(m, p) for m, p in operations if not document["paths"][p][m].get("security")]
    assert public == [("get", "/api/v1/signup/{brand}/{purpose}"), ("post", "/api/v1/signup")]
    operations = [operation for operation in operations if operation not in public]
    assert len(operations) >= 22
    for headers in ({}, {"Authorization": "Bearer cm_not-a-key"}, {"Authorization": f"Basic {db}"}):
        for method, path in operations:
            url = re.sub(r"\{[a-z_]+\}", "1", path)
            response = Client().generic(
                method.upper(),
                url,
                json.dumps({"contact_id": 1}),
                content_type="application/json",
                headers=headers,
            )
            assert response.status_code == 401, (method, path, headers, response.content[:200])
            assert response.json() == {"detail": "Unauthorized"}


def test_the_document_lists_the_contracts_operations(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").json()
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    for expected in [
        ("POST", "/api/v1/contacts"),
        ("GET", "/api/v1/contacts/{contact_id}"),
        ("PATCH", "/api/v1/contacts/{contact_id}"),
        ("POST", "/api/v1/contacts/import"),
        ("POST", "/api/v1/contacts/{contact_id}/visits"),
        ("POST", "/api/v1/consents"),
        ("POST", "/api/v1/objections"),
        ("GET", "/api/v1/contacts/{contact_id}/consents"),
        ("GET", "/api/v1/check"),
        ("GET", "/api/v1/suppressions"),
        ("POST", "/api/v1/suppressions"),
        ("GET", "/api/v1/ledger/verify"),
        ("GET", "/api/v1/purposes"),
        ("POST", "/api/v1/purposes"),
    ]:
        assert expected in operations
    assert document["components"]["securitySchemes"] == {"ApiKeyAuth": {"type": "http", "scheme": "bearer"}}
