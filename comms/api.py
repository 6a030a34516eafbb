"""The one NinjaAPI at /api/v1: routers from each app, domain errors mapped to HTTP here."""

from django.db import DataError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

from comms.accounts.api import router as accounts_router
from comms.auth import ApiKeyAuth
from comms.campaigns.api import router as campaigns_router
from comms.campaigns.followups.api import router as followups_router
from comms.contacts.api import router as contacts_router
from comms.errors import DomainError, InvalidInput
from comms.rights.api import router as rights_router
from comms.suppression.api import router as suppression_router
from comms.web.api import router as signup_router

api = NinjaAPI(
    title="comms",
    version="1",
    description=(
        "Consent-enforcing campaign sender. Authenticate with `Authorization: Bearer <key>`; "
        "keys are created with `python manage.py create_api_key --role ROLE --name NAME`."
    ),
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


@api.exception_handler(InvalidInput)
def invalid_input(request: HttpRequest, exc: InvalidInput) -> HttpResponse:
    detail = [{"type": "value_error", "loc": [exc.location, exc.field], "msg": exc.message}]
    return api.create_response(request, {"detail": detail}, status=422)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, {"detail": exc.message}, status=exc.status_code)


@api.exception_handler(DataError)
def data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A value the database cannot hold (out of range, bad encoding) is the client's input.
    return api.create_response(request, {"detail": "a value is out of range for its field"}, status=422)
