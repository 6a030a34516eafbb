"""What the contacts app announces, for the apps above it to act on (it knows none of them).

``visit_recorded(sender=Visit, visit=...)`` is sent inside the transaction that records a new
visit (an API call or an import row): a receiver's writes commit or roll back with the visit.
Campaigns plan the brand's follow-ups from it (``comms/campaigns/receivers.py``).
"""

from __future__ import annotations

from django.dispatch import Signal

visit_recorded = Signal()
