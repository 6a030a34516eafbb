"""The one NinjaAPI at /api/v1: routers from each app, domain errors mapped to HTTP here, and the
finishing of the OpenAPI document (error answers, roles, examples: comms/openapi.py)."""

import json
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

from comms.accounts.api import router as accounts_router
from comms.auth import ApiKeyAuth
from comms.campaigns.api import router as campaigns_router
from comms.campaigns.followups.api import router as followups_router
from comms.contacts.api import router as contacts_router
from comms.errors import DomainError, InvalidInput
from comms.openapi import API_DESCRIPTION, finish_document
from comms.rights.api import router as rights_router
from comms.suppression.api import router as suppression_router
from comms.web.api import router as signup_router


class CommsApi(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        views = {}
        for bound_router in self._get_bound_routers():
            for path_view in bound_router.path_operations.values():
                for operation in path_view.operations:
                    operation_id = operation.operation_id or self.get_openapi_operation_id(operation)
                    views[operation_id] = operation.view_func
        finish_document(document, views)
        return document


api = CommsApi(
    title="comms",
    version="1",
    description=API_DESCRIPTION,
    auth=ApiKeyAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
)
api.add_router("", contacts_router)
api.add_router("", suppression_router)
api.add_router("", campaigns_router)
api.add_router("", followups_router)
api.add_router("", rights_router)
api.add_router("", accounts_router)
api.add_router("", signup_router)


def _dotted(request: HttpRequest, loc: list[Any]) -> str | None:
    """["body", "payload", "contacts", 2, "email"] -> "contacts.2.email"; ["query", "limit"] -> "limit"."""
    parts = [str(part) for part in loc]
    in_body = parts[:1] == ["body"]
    if parts[:1] in (["body"], ["query"], ["path"], ["file"], ["form"]):
        parts = parts[1:]
    if parts[:1] == ["payload"]:
        parts = parts[1:]
    if in_body and parts and parts[0] == _union_tag(request):
        parts = parts[1:]  # pydantic names the member of a tagged union (action, trigger) it tried
    return ".".join(parts) or None


def _union_tag(request: HttpRequest) -> str | None:
    try:
        body = json.loads(request.body)
    except ValueError:
        return None
    if isinstance(body, dict):
        for key in ("action", "trigger"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return None


def _error(request: HttpRequest, status: int, detail: Any, field: str | None) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "field": field}, status=status)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """The request does not match the document: 422, every error listed, the first field named."""
    errors = [{key: value for key, value in error.items() if key != "ctx"} for error in exc.errors]
    for error in errors:
        if error.get("type") == "string_pattern_mismatch":
            error["msg"] = "does not have the format the document states (its pattern)"
    return _error(request, 422, errors, _dotted(request, errors[0]["loc"]) if errors else None)


@api.exception_handler(InvalidInput)
def refused_input(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    """The request matched the document (pydantic let it through) and the service refused it
    for what only the service knows: the state of what it names, the clock, the numbering
    plan, the length of an SMS. A conflict with that state: 409, the field named."""
    return _error(request, 409, exc.message, exc.field)


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja's own: 400 for a body that is not JSON, 401 stays ninja's {"detail": "Unauthorized"}.
    return _error(request, exc.status_code, str(exc), None)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return _error(request, exc.status_code, exc.message, exc.field)


@api.exception_handler(RequestDataTooBig)
def request_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "the request body is larger than this service accepts", None)


@api.exception_handler(MultiPartParserError)
def bad_multipart(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    # e.g. multipart/form-data without a boundary: the body cannot be read.
    return _error(request, 400, "the multipart body cannot be parsed", None)


@api.exception_handler(DataError)
def data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the database cannot hold: the schema should have refused it. Still the client's
    # input, never a 500.
    return _error(request, 422, "a value is out of range for its field", None)
