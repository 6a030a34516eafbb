from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.accounts.models import Role
from comms.accounts.services import api_key_create
from comms.errors import DomainError


class Command(BaseCommand):
    help = "Create an API key with a role and print it (alone, on stdout, shown only this once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--name", required=True, help="a unique name, e.g. the system that uses the key")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            _, key = api_key_create(name=options["name"], role=options["role"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(key)
