"""Shared API schema pieces: the error shape and strict scalar types."""

from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, Field, StringConstraints

MAX_ID = 2**63 - 1


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Str32 = Annotated[str, StringConstraints(max_length=32), AfterValidator(_no_nul)]
Str40 = Annotated[str, StringConstraints(max_length=40), AfterValidator(_no_nul)]
Str60 = Annotated[str, StringConstraints(max_length=60), AfterValidator(_no_nul)]
Str100 = Annotated[str, StringConstraints(max_length=100), AfterValidator(_no_nul)]
Str200 = Annotated[str, StringConstraints(max_length=200), AfterValidator(_no_nul)]
Str254 = Annotated[str, StringConstraints(max_length=254), AfterValidator(_no_nul)]
Str1000 = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_nul)]
Str20000 = Annotated[str, StringConstraints(max_length=20000), AfterValidator(_no_nul)]
ShortText = Str200
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorOut(Schema):
    detail: Any


# Every operation may answer these; declaring them keeps the OpenAPI document honest.
ERRORS: dict[int, type[Schema]] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ErrorOut,
}


def responses(ok: dict[int, Any]) -> dict[int, Any]:
    return {**ok, **ERRORS}
