"""Shared API schema pieces: the strict input base, the error shape and exact scalar types.

The OpenAPI document is the contract: every type here validates exactly what its JSON Schema
states (docs/api.md, "The document is the contract"). Patterns use ``[0-9]`` rather than ``\\d``
(which is Unicode-wide in Python) and are anchored, so Python, pydantic and any JSON Schema
validator read them alike.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from ninja import Schema
from ninja.pagination import LimitOffsetPagination
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)

from comms.errors import InvalidInput

MAX_ID = 2**63 - 1
NO_NUL = r"^[^\x00]*$"
# Text that holds at least one character that is not white space (a name, a notice).
NOT_BLANK = r"^[^\x00]*[^\x00\t\n\x0b\x0c\r ][^\x00]*$"
SLUG = r"^[a-z0-9][a-z0-9_-]*$"

_YEAR = "(19[0-9][0-9]|2[0-9][0-9][0-9])"
_DATE = _YEAR + "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?"
_OFFSET = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
INSTANT_PATTERN = f"^{_DATE}T{_TIME}{_OFFSET}$"
DATE_PATTERN = f"^{_DATE}$"
# The addresses the API takes: a dot-atom email address with a dotted domain, and a phone
# number written with digits, spaces, dots, dashes and brackets (the numbering plan decides
# whether it is a mobile number: 409 when not).
# Spaces or tabs around either are allowed and dropped.
EMAIL_PATTERN = (
    r"^[ \t]*[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}[ \t]*$"
)
MOBILE_PATTERN = r"^[ \t]*[0-9+(][0-9+() .-]{5,31}[ \t]*$"
_INSTANT_RE = re.compile(INSTANT_PATTERN)
_DATE_RE = re.compile(DATE_PATTERN)
_WHOLE_RE = re.compile("-?[0-9]{1,20}")


def _refuse_nul(value: str, info: ValidationInfo) -> str:
    # Raised as the service's refusal (409), not as a schema error: the schema allows NUL here.
    if "\x00" in value:
        raise InvalidInput(info.field_name or "body", "must not contain NUL characters (U+0000)")
    return value


def _instant(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime) and value.utcoffset() is not None:
        return value.astimezone(dt.UTC)
    if not isinstance(value, str) or not _INSTANT_RE.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time with a time zone in the years 1900-2999, "
            "e.g. 2026-05-01T10:00:00+02:00"
        )
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date-time of the calendar") from None
    # In UTC from here on: PostgreSQL holds offsets up to 15:59 only, RFC 3339 up to 23:59.
    return parsed.astimezone(dt.UTC)


def whole_number(value: object) -> object:
    if isinstance(value, str):
        if not _WHOLE_RE.fullmatch(value):
            raise ValueError("must be a whole number written in decimal digits")
        return int(value)
    return value


def json_integer(value: object) -> object:
    # JSON Schema counts 3.0 as an integer; so does the API (3.5 stays refused).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _query_bool(value: object) -> object:
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


def _date(value: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise ValueError("must be a date (YYYY-MM-DD) in the years 1900-2999")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a date of the calendar") from None


Str32 = Annotated[str, StringConstraints(max_length=32, pattern=NO_NUL)]
Str40 = Annotated[str, StringConstraints(max_length=40, pattern=NO_NUL)]
Str60 = Annotated[str, StringConstraints(max_length=60, pattern=NO_NUL)]
Str100 = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]
Str200 = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
Str254 = Annotated[str, StringConstraints(max_length=254, pattern=NO_NUL)]
Str1000 = Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)]
# Long texts (message bodies, notices) state no pattern: generating and checking a pattern over
# 20,000 characters is slow for every client; a NUL in them is refused with 409 instead.
Str20000 = Annotated[str, StringConstraints(max_length=20000), AfterValidator(_refuse_nul)]
ShortText = Str200
Slug = Annotated[str, StringConstraints(max_length=60, pattern=SLUG)]
# Text with something in it besides white space (names, notice texts, message texts).
Name100 = Annotated[str, StringConstraints(max_length=100, pattern=NOT_BLANK)]
Name200 = Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK)]
Text20000 = Annotated[str, StringConstraints(min_length=1, max_length=20000), AfterValidator(_refuse_nul)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
Mobile = Annotated[str, StringConstraints(max_length=32, pattern=MOBILE_PATTERN)]
# An email address or a phone number: channel `email` takes the first, `sms` the second.
Address = Annotated[str, StringConstraints(max_length=254, pattern=f"({EMAIL_PATTERN})|({MOBILE_PATTERN})")]
# A whole number in a JSON body: never a string, never true/false; 3.0 counts as 3.
Int = Annotated[int, BeforeValidator(json_integer), Field(strict=True)]
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(json_integer), Field(strict=True)]
# Path and query values arrive as text: only plain decimal digits count as a number there.
PathId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(whole_number)]
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]


# A date-time with a time zone (RFC 3339, naive ones are refused: 422), years 1900-2999.
Instant = Annotated[
    dt.datetime,
    PlainValidator(_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": INSTANT_PATTERN,
            "description": "RFC 3339 date-time with a time zone, years 1900-2999",
            "examples": ["2026-05-01T10:00:00+02:00"],
        }
    ),
]
Date = Annotated[
    dt.date,
    PlainValidator(_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": DATE_PATTERN,
            "description": "date (YYYY-MM-DD), years 1900-2999",
            "examples": ["1990-05-17"],
        }
    ),
]


class InputSchema(BaseModel):
    """Every request body: unknown fields are refused, no type is coerced (a number is not a
    date-time, a string is not a number, a list is not an object)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ValidationItemOut(Schema):
    type: str
    loc: list[str | int]
    msg: str


class ErrorOut(Schema):
    """Every error answer. ``detail`` is a message, or for 422 the list of what does not match
    the document; ``field`` names the (first) field concerned, dotted (``contacts.2.email``),
    or is null when the error concerns the request as a whole."""

    detail: str | list[ValidationItemOut]
    field: str | None = None


# The error answers every operation may give; comms.api adds the ones that depend on the
# operation (401/403 with a key, 400/413 with a body) and their descriptions.
ERRORS: dict[int, type[Schema]] = {404: ErrorOut, 409: ErrorOut, 414: ErrorOut, 422: ErrorOut}


def responses(ok: dict[int, Any]) -> dict[int, Any]:
    return {**ok, **ERRORS}


MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000


class Pagination(LimitOffsetPagination):
    """``limit`` 1-1000 (default 100) and ``offset`` 0-1,000,000; outside that range: 422.
    Deeper than a million rows, narrow the filter instead of paging."""

    class Input(Schema):
        limit: Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(whole_number)] = Field(
            100, description="how many items (1-1000)"
        )
        offset: Annotated[int, Field(ge=0, le=MAX_OFFSET), BeforeValidator(whole_number)] = Field(
            0, description="how many items to skip (0-1,000,000)"
        )
