"""Property-based run of schemathesis over the whole OpenAPI document, in-process against the
Django WSGI app, with every check schemathesis has (the pytest integration's default: all of
them) and a key of each role and none: whatever a client sends, the answer is one the document
declares, in the shape it declares; a request the schema allows is not refused as invalid
(positive data acceptance); a request it does not allow is refused (negative data rejection);
no server error; auth is never ignored. A stateful run follows the document's links (a created
contact's id into its visits, consents, export...) so operations reach real objects.

The database is seeded once for the module and every request commits (autocommit, as in
production): a database error inside one request is not hidden by, and does not poison, an
outer test transaction. The module flushes the database before and after itself, so ids start
at 1 and the seeded rows are the ones the generated ids (1, 2, ...) find.

Bounded: a few examples per operation and role (derandomised, so a run is reproducible), a
short stateful run per role.
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
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.config import SchemathesisConfig

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_create
from comms.campaigns.services import CampaignInput, campaign_create
from comms.contacts.models import Brand, Centre
from comms.contacts.services import ContactInput, contact_create, visit_record
from comms.suppression import services as ledger
from comms.suppression.services import Principal
from comms.wsgi import application

ROLES = ["marketer", "staff", "dpo", "system", None]
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 14,
        "generation": {"max-examples": 4},
        "suppress-health-check": ["all"],
        "phases": {"coverage": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=CONFIG)
# The key of the role under test (None: no key), handed to schemathesis as explicit auth so
# that its auth checks can take it away and put a wrong one in.
_current_key: list[str | None] = [None]


@schema.auth(refresh_interval=None, retry_on=[])
class RoleKey:
    def get(self, case: Any, ctx: Any) -> str | None:
        return _current_key[0]

    def set(self, case: Any, data: str | None, ctx: Any) -> None:
        if data:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


FUZZ = settings(
    max_examples=4,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)
STATEFUL = settings(
    max_examples=3,
    stateful_step_count=8,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=False,
    suppress_health_check=list(HealthCheck),
)


def _seed() -> dict[str, str]:
    """Two brands, a centre, a purpose with two notice versions, contacts with a guardian link,
    a visit, a grant, a pending grant, a suppression, a draft campaign, and one key per role:
    rows 1.. exist in every table the API reads."""
    staff = Principal(actor="staff", recorded_by="seed")
    brand = Brand.objects.create(key="fit24", name="FIT24", sms_sender="FIT24")
    Brand.objects.create(key="klinikk24", name="Klinikk24")
    centre = Centre.objects.create(brand=brand, key="oslo", name="Oslo")
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
    visit_record(
        contact=parent, kind="check_in", occurred_at=timezone.now(), centre=centre.key, external_id="v-1"
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
    campaign_create(
        brand=brand,
        data=CampaignInput(name="Spring", channel="email", purpose=purpose.key, subject="Hi", text="Hello"),
    )
    return {role: api_key_create(name=f"fuzz-{role}", role=role)[1] for role in ROLES if role}


@pytest.fixture(scope="module")
def keys(django_db_setup: Any, django_db_blocker: Any) -> Iterator[dict[str, str]]:
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        try:
            yield _seed()
        finally:
            call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def db(keys: dict[str, str], django_db_blocker: Any) -> Iterator[dict[str, str]]:
    """This module's own ``db``: asking for a fixture of that name is what makes pytest-django
    create the test database, but here there is no test transaction around the requests; they
    commit against the module's seeded database, as they would in production."""
    with django_db_blocker.unblock():
        yield keys


def _use_role(keys: dict[str, str], role: str | None) -> None:
    _current_key[0] = keys[role] if role else None


class _KeysKept:
    """A dpo key may rotate or revoke any key, its own too; put the fuzzing keys back after
    each call so the rest of the run still authenticates."""

    def __init__(self) -> None:
        self.rows = {
            row.pk: (row.key_hash, row.prefix) for row in ApiKey.objects.filter(name__startswith="fuzz-")
        }

    def restore(self) -> None:
        for pk, (key_hash, prefix) in self.rows.items():
            ApiKey.objects.filter(pk=pk).update(
                key_hash=key_hash, prefix=prefix, revoked_at=None, rotated_at=None
            )


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@FUZZ
def test_the_api_does_what_the_document_says(case: Any, role: str | None, db: dict[str, str]) -> None:
    _use_role(db, role)
    kept = _KeysKept()
    try:
        case.call_and_validate()
    finally:
        kept.restore()


@pytest.mark.parametrize("role", ROLES)
def test_the_documents_links_lead_to_real_objects(role: str | None, db: dict[str, str]) -> None:
    _use_role(db, role)
    kept = _KeysKept()

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def teardown(self) -> None:
            kept.restore()

    run_state_machine_as_test(Machine, settings=STATEFUL)


def test_every_operation_needs_a_key(db: dict[str, str]) -> None:
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
    system = db["system"]
    for headers in ({}, {"Authorization": "Bearer cm_not-a-key"}, {"Authorization": f"Basic {system}"}):
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
            assert response.json() == {"detail": "Unauthorized", "field": None}


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


def test_every_operation_says_what_it_does_who_may_call_it_and_how_it_fails(client: Any) -> None:
    document = client.get("/api/v1/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            # Written, not ninja's title-cased function name ("Record Consent").
            assert operation["summary"] and operation["summary"] != operation["summary"].title(), label
            assert "**Who may call it:**" in operation["description"], label
            assert len(operation["description"].split("**Who may call it:**")[0].strip()) > 10, label
            responses = operation["responses"]
            assert "414" in responses, label
            assert "text/html" in responses["414"]["content"], label  # a proxy may answer first
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= set(responses), label
            if operation.get("security"):
                assert "401" in responses, label
            for status, answer in responses.items():
                if int(status) >= 400:
                    assert "application/json" in answer["content"], (label, status)
