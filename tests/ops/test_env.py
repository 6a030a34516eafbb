"""Settings read from the environment refuse what they cannot use, naming the variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from comms.env import env_float


def test_a_number_setting_takes_a_number_in_its_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMS_TEST_NUMBER", raising=False)
    assert env_float("COMMS_TEST_NUMBER", 1.1, minimum=0.1, maximum=100) == 1.1
    monkeypatch.setenv("COMMS_TEST_NUMBER", "4")
    assert env_float("COMMS_TEST_NUMBER", 1.1, minimum=0.1, maximum=100) == 4.0
    for bad, message in (
        ("fast", "must be a number"),
        ("0", "must be between 0.1 and 100"),
        ("nan", "must be between"),
    ):
        monkeypatch.setenv("COMMS_TEST_NUMBER", bad)
        with pytest.raises(ImproperlyConfigured, match=f"COMMS_TEST_NUMBER {message}"):
            env_float("COMMS_TEST_NUMBER", 1.1, minimum=0.1, maximum=100)


def test_the_database_session_gets_the_random_page_cost(db: None) -> None:
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        (value,) = cursor.fetchone()
    assert float(value) == settings.DB_RANDOM_PAGE_COST == 1.1
