import datetime as dt
from typing import Annotated, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import StringConstraints

from comms.contacts.models import Brand, Contact, Visit
from comms.schemas import (
    EMAIL_PATTERN,
    MOBILE_PATTERN,
    NOT_BLANK,
    SLUG,
    Date,
    Id,
    InputSchema,
    Instant,
    Str100,
)

Kind = Literal["member", "guest", "lead"]
VisitKindIn = Literal["trial_session", "check_in", "class_booking"]
BrandKey = Annotated[str, StringConstraints(max_length=40, pattern=SLUG)]
CentreKey = Annotated[str, StringConstraints(max_length=60, pattern=SLUG)]
# Letters, digits, - and _; compared in lower case.
TagName = Annotated[str, StringConstraints(min_length=1, max_length=60, pattern=r"^[\p{L}\p{N}_-]+$")]
# The empty string is taken as "none" (as null), for clients that send empty form fields.
EmailOrEmpty = Annotated[str, StringConstraints(max_length=254, pattern=f"(^$)|({EMAIL_PATTERN})")]
MobileOrEmpty = Annotated[str, StringConstraints(max_length=32, pattern=f"(^$)|({MOBILE_PATTERN})")]
MAX_TAGS = 50


class ContactIn(InputSchema):
    brand: BrandKey = Field(description="the brand's key (404 when unknown)")
    kind: Kind
    external_id: Str100 | None = Field(default=None, description="the member system's id; unique per brand")
    first_name: Str100 = ""
    last_name: Str100 = ""
    birth_date: Date | None = Field(default=None, description="not in the future (else 409)")
    email: EmailOrEmpty | None = Field(default=None, description="stored in lower case")
    mobile: MobileOrEmpty | None = Field(
        default=None,
        description="a mobile number, national (Norway) or international (+46...); stored as E.164. "
        "A number the numbering plan does not know as a mobile: 409",
    )
    guardian_id: Id | None = Field(default=None, description="the guardian's contact id (404 when unknown)")
    home_centre: CentreKey | None = Field(
        default=None, description="a centre key of the brand (404 when unknown)"
    )
    tags: list[TagName] = Field(default_factory=list, max_length=MAX_TAGS)
    purchase_at: Instant | None = Field(default=None, description="the last purchase (for the soft opt-in)")


class ContactPatch(InputSchema):
    """Only the fields given change; ``null`` clears a field that may be empty. Unknown fields
    (also ``brand``: a contact never moves to another brand) are refused."""

    kind: Kind | None = None
    external_id: Str100 | None = None
    first_name: Str100 | None = None
    last_name: Str100 | None = None
    birth_date: Date | None = None
    email: EmailOrEmpty | None = None
    mobile: MobileOrEmpty | None = None
    guardian_id: Id | None = None
    home_centre: CentreKey | None = None
    tags: list[TagName] | None = Field(default=None, max_length=MAX_TAGS)
    purchase_at: Instant | None = None


class ContactImportRowIn(ContactIn):
    external_id: Annotated[str, StringConstraints(max_length=100, pattern=NOT_BLANK)] = Field(
        description="required: the import is idempotent on (brand, external_id)"
    )


class ContactOut(Schema):
    id: int
    brand: str
    kind: str
    external_id: str | None
    first_name: str
    last_name: str
    birth_date: dt.date | None
    email: str | None
    mobile: str | None
    guardian_id: int | None
    home_centre: str | None
    tags: list[str]
    purchase_at: dt.datetime | None
    erased_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_brand(obj: Contact) -> str:
        return obj.brand.key

    @staticmethod
    def resolve_home_centre(obj: Contact) -> str | None:
        return obj.home_centre.key if obj.home_centre else None

    @staticmethod
    def resolve_tags(obj: Contact) -> list[str]:
        return sorted(t.name for t in obj.tags.all())


class ContactImportIn(InputSchema):
    contacts: list[ContactImportRowIn] = Field(min_length=1, max_length=settings.IMPORT_MAX_ROWS)


class ImportRowErrorOut(Schema):
    index: int
    external_id: str | None
    field: str
    message: str


class ImportOut(Schema):
    created: int
    updated: int
    unchanged: int
    errors: list[ImportRowErrorOut]


class VisitIn(InputSchema):
    kind: VisitKindIn
    occurred_at: Instant = Field(description="when the visit took place; not in the future (else 409)")
    centre: CentreKey | None = Field(default=None, description="a centre key of the brand (404 when unknown)")
    external_id: Str100 | None = Field(
        default=None, description="the source system's id: a repeat answers 200 with the first visit"
    )


class VisitOut(Schema):
    id: int
    contact_id: int
    kind: str
    occurred_at: dt.datetime
    centre: str | None
    external_id: str | None
    created_at: dt.datetime

    @staticmethod
    def resolve_centre(obj: Visit) -> str | None:
        return obj.centre.key if obj.centre else None


class BrandOut(Schema):
    key: str
    name: str
    sms_sender: str
    email_from: str
    centres: list[str]

    @staticmethod
    def resolve_centres(obj: Brand) -> list[str]:
        return [c.key for c in obj.centres.all()]


class ContactFilter(Schema):
    brand: BrandKey | None = None
    kind: Kind | None = None
    external_id: Str100 | None = None
