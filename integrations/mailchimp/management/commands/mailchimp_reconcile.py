"""``manage.py mailchimp_reconcile``: run the Mailchimp reconciliation now and print its counts."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from integrations.errors import IntegrationError
from integrations.mailchimp.audiences import enabled
from integrations.mailchimp.sync import reconcile


class Command(BaseCommand):
    help = (
        "Pull Mailchimp unsubscribes/cleaned into the ledger and push unsubscribes for suppressed addresses."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not enabled():
            raise CommandError("Mailchimp is not configured (MAILCHIMP_API_KEY, MAILCHIMP_AUDIENCES)")
        try:
            counts = reconcile()
        except IntegrationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(counts, sort_keys=True))
