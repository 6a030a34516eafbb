"""Fixtures for the sign-up and freshness tests: the member pages' fixtures, the fake LifeVision
and stub broker, and a movable clock."""

from __future__ import annotations

from tests.campaigns.conftest import broker, fake_lifevision, run_actors  # noqa: F401
from tests.followups.conftest import clock  # noqa: F401
from tests.web.conftest import _fresh_rate_limits, browser, member, newsletter, offers  # noqa: F401
