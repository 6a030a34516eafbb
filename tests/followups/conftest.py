"""Fixtures for the follow-up tests: the campaign tests' fake LifeVision and stub-broker worker,
a movable clock, and a brand with a trial-follow-up purpose."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from comms.campaigns import tasks
from comms.suppression.models import Purpose
from tests.campaigns.conftest import broker, fake_lifevision, run_actors  # noqa: F401

_real_now = timezone.now


class Clock:
    """``django.utils.timezone.now`` moved by ``advance``: the whole service (and the worker's
    threads) sees the same time."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def now(self) -> dt.datetime:
        return _real_now() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(timezone, "now", moved.now)
    return moved


@pytest.fixture
def trial_purpose(make_purpose: Callable[..., Purpose]) -> Purpose:
    return make_purpose(key="trial-followup", channels=("sms", "email"))


@pytest.fixture
def tick(run_actors: Callable[[], None]) -> Callable[[], None]:  # noqa: F811
    """What the scheduler does each minute (and every five): both ticks, run on the worker."""

    def run() -> None:
        tasks.followups_tick.send()
        run_actors()
        tasks.campaigns_tick.send()
        run_actors()

    return run


def as_json(response: Any) -> Any:
    assert response.status_code in (200, 201), response.content
    return response.json()
