"""What campaigns do when a lower app announces something (connected in ``CampaignsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from comms.campaigns.followups.services import followups_plan_for_visit
from comms.contacts.models import Visit


def visit_recorded(sender: type[Visit], *, visit: Visit, **kwargs: Any) -> None:
    """A new visit: plan what the brand's active follow-up rules say about it."""
    followups_plan_for_visit(visit=visit)
