"""Fixtures shared by the gate and ledger service tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from comms.contacts.models import Contact
from comms.suppression.models import Purpose
from tests.suppression.ledger_helpers import a_minor


@pytest.fixture
def second_purpose(make_purpose: Callable[..., Purpose]) -> Purpose:
    return make_purpose("fit24-offers")


@pytest.fixture
def soft_purpose(make_purpose: Callable[..., Purpose]) -> Purpose:
    return make_purpose("member-dialogue", allows_soft_opt_in=True)


@pytest.fixture
def guardian(make_contact: Callable[..., Contact]) -> Contact:
    return make_contact()


@pytest.fixture
def minor(make_contact: Callable[..., Contact], guardian: Contact) -> Contact:
    return make_contact(birth_date=a_minor(), guardian_id=guardian.pk)
