from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_rotate
from comms.errors import DomainError


class Command(BaseCommand):
    help = "Give an API key a new secret and print it (alone, on stdout, shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = ApiKey.objects.filter(name=options["name"]).first()
        if api_key is None:
            raise CommandError(f"no API key named {options['name']!r}")
        try:
            _, key = api_key_rotate(api_key=api_key)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(key)
