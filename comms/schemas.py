"""Shared API schema pieces: the error shape and strict scalar types."""

import datetime as dt
from typing import Annotated, Any

from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

MAX_ID = 2**63 - 1


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _sane_instant(value: dt.datetime) -> dt.datetime:
    # Instants are stored in UTC and hashed into the ledger: refuse what cannot be converted to
    # UTC (year 1 with a positive offset, year 9999 with a negative one) or is not plausible.
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not 1900 <= utc.year <= 2999:
        raise ValueError("must lie between the years 1900 and 2999")
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
# A date-time with a time zone (naive ones are refused: 422), within years 1900–2999 in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_sane_instant)]


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
