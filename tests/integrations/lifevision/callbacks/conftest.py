"""Callback processing runs the actors on the stub broker against the campaign fixtures; the
``client`` here is Django's test client again (the parent conftest's is a LifeVision client)."""

import pytest
from django.test import Client

from tests.campaigns.conftest import broker, fake_lifevision, run_actors  # noqa: F401  (shared fixtures)


@pytest.fixture
def client() -> Client:
    return Client()
