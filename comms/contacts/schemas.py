import datetime as dt
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import StringConstraints

from comms.contacts.models import Brand, Contact, Visit
from comms.schemas import Id, Instant, ShortText, Str32, Str40, Str60, Str100, Str254

Kind = Literal["member", "guest", "lead"]
VisitKindIn = Literal["trial_session", "check_in", "class_booking"]
TagName = Annotated[str, StringConstraints(max_length=60)]


class ContactIn(Schema):
    brand: Str40
    kind: Kind
    external_id: Str100 | None = None
    first_name: Str100 = ""
    last_name: Str100 = ""
    birth_date: dt.date | None = None
    email: Str254 | None = None
    mobile: Str32 | None = None
    guardian_id: Id | None = None
    home_centre: Str60 | None = None
    tags: list[TagName] = Field(default_factory=list, max_length=50)
    purchase_at: Instant | None = None


class ContactPatch(Schema):
    kind: Kind | None = None
    external_id: Str100 | None = None
    first_name: Str100 | None = None
    last_name: Str100 | None = None
    birth_date: dt.date | None = None
    email: Str254 | None = None
    mobile: Str32 | None = None
    guardian_id: Id | None = None
    home_centre: Str60 | None = None
    tags: list[TagName] | None = Field(default=None, max_length=50)
    purchase_at: Instant | None = None


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


class ContactImportIn(Schema):
    contacts: list[ContactIn] = Field(min_length=1)


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


class VisitIn(Schema):
    kind: VisitKindIn
    occurred_at: Instant
    centre: Str60 | None = None
    external_id: Str100 | None = None


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
    brand: ShortText | None = None
    kind: Kind | None = None
    external_id: ShortText | None = None
