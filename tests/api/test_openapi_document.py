"""The published OpenAPI document (/api/v1/openapi.json) shows an example for every operation: its
request body, when it takes one, and each of its success answers (comms/openapi_examples/). Every
example in the document matches the schema it illustrates (formats checked, no field the schema
does not list), so an example cannot drift from the API: change a schema and the example that no
longer fits fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from django.test import Client

from comms.openapi_examples import EXAMPLES

# How the API writes a date-time (DjangoJSONEncoder): UTC with Z, milliseconds when there are any.
EMITTED_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
LOOKS_LIKE_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def _success_answers(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {status: answer for status, answer in operation["responses"].items() if int(status) < 400}


def _closed(schema: Any) -> Any:
    """The schema with every object closed to fields it does not list: an answer's schema lets
    a client ignore new fields, but an example showing a field the API no longer has has drifted."""
    if isinstance(schema, list):
        return [_closed(each) for each in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        closed["additionalProperties"] = False
    return closed


def _errors(document: dict[str, Any], schema: dict[str, Any], example: Any) -> list[str]:
    # The document's components are the root the schemas' "#/components/schemas/..." refer to.
    root = {"components": _closed(document["components"]), "allOf": [_closed(schema)]}
    validator = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    return [
        f"{'/'.join(map(str, error.instance_path))}: {error.message}"
        for error in validator.iter_errors(example)
    ]


def _date_times(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for each in value.values():
            yield from _date_times(each)
    elif isinstance(value, list):
        for each in value:
            yield from _date_times(each)
    elif isinstance(value, str) and LOOKS_LIKE_DATE_TIME.match(value):
        yield value


def test_every_operation_has_an_example_request_and_answer(document: dict[str, Any]) -> None:
    missing = []
    operations = list(_operations(document))
    for label, operation in operations:
        for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
            if "example" not in body:
                missing.append(f"{label}: request ({media_type})")
        for status, answer in _success_answers(operation).items():
            if "example" not in answer["content"]["application/json"]:
                missing.append(f"{label}: answer {status}")
    assert missing == []
    assert len(operations) >= 55


def test_every_example_names_an_operation_and_an_answer_it_has(document: dict[str, Any]) -> None:
    """No example is left behind when an operation is renamed (its id follows its module) or
    loses an answer: it would silently not be shown."""
    operations = {operation["operationId"]: operation for _, operation in _operations(document)}
    assert set(EXAMPLES) <= set(operations)
    for operation_id, examples in EXAMPLES.items():
        operation = operations[operation_id]
        assert set(examples) <= {"request", "responses"}, operation_id
        assert ("request" in examples) == ("requestBody" in operation), operation_id
        assert {str(status) for status in examples["responses"]} == set(_success_answers(operation)), (
            operation_id
        )


def test_every_example_matches_its_schema(document: dict[str, Any]) -> None:
    checked = 0
    problems = []
    for label, operation in _operations(document):
        contents = [("request", operation.get("requestBody", {}).get("content", {}))]
        contents += [(status, answer.get("content", {})) for status, answer in operation["responses"].items()]
        for where, content in contents:
            for media_type, media in content.items():
                if "example" in media:
                    checked += 1
                    for error in _errors(document, media["schema"], media["example"]):
                        problems.append(f"{label} {where} {media_type}: {error}")
    assert problems == []
    assert checked > 100  # a request and an answer per operation, and the error answers


def test_answers_write_date_times_as_the_api_does(document: dict[str, Any]) -> None:
    wrong = []
    for label, operation in _operations(document):
        for status, answer in _success_answers(operation).items():
            for value in _date_times(answer["content"]["application/json"].get("example")):
                if not EMITTED_DATE_TIME.match(value):
                    wrong.append(f"{label} {status}: {value}")
    assert wrong == []


def test_an_example_that_breaks_its_schema_is_found(document: dict[str, Any]) -> None:
    schema = document["paths"]["/api/v1/contacts"]["post"]["requestBody"]["content"]["application/json"]
    assert _errors(document, schema["schema"], schema["example"]) == []
    assert _errors(document, schema["schema"], {**schema["example"], "kind": "customer"})
    assert _errors(document, schema["schema"], {**schema["example"], "purchase_at": "2026-03-01 11:00"})
    answer = document["paths"]["/api/v1/contacts"]["post"]["responses"]["201"]["content"]["application/json"]
    assert _errors(document, answer["schema"], {**answer["example"], "id": "4711"})
    assert _errors(document, answer["schema"], {**answer["example"], "phone": "+4741234567"})
