from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from comms.contacts.models import Brand
from comms.studio.models import BrandAccess
from tests.campaigns.conftest import broker, fake_lifevision, run_actors  # noqa: F401 (fixtures)

PASSWORD = "studio-pass-1234"


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    def make(username: str, *, groups: tuple[str, ...] = (), brands: tuple[Brand, ...] = (), **extra: Any) -> User:
        user = User.objects.create_user(username=username, password=PASSWORD, **extra)
        for name in groups:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
        for brand in brands:
            BrandAccess.objects.create(user=user, brand=brand)
        return user

    return make


@pytest.fixture
def marketer(make_user: Callable[..., User], brand: Brand) -> User:
    return make_user("mia", groups=("marketer",), brands=(brand,), email="mia@fit24.example")


@pytest.fixture
def studio(marketer: User) -> Client:
    client = Client()
    client.force_login(marketer)
    return client


@pytest.fixture
def drain(broker: Any, django_capture_on_commit_callbacks: Any) -> Any:  # noqa: F811
    from tests.campaigns.campaign_helpers import Drain

    return Drain(broker, django_capture_on_commit_callbacks)
