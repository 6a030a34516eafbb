from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key: it stops working at once (the row stays, for the record)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = ApiKey.objects.filter(name=options["name"]).first()
        if api_key is None:
            raise CommandError(f"no API key named {options['name']!r}")
        api_key_revoke(api_key=api_key)
        self.stdout.write(f"revoked {api_key.name}")
