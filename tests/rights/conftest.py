"""Fixtures for the rights tests: the campaign tests' fake LifeVision and stub broker, and a movable
clock (shared with the follow-up tests)."""

from __future__ import annotations

from tests.campaigns.conftest import broker, fake_lifevision, run_actors  # noqa: F401
from tests.followups.conftest import clock, trial_purpose  # noqa: F401
