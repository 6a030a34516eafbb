from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_usage_flush


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(BaseCommand):
    help = "List the API keys: name, role, prefix, created, last used, uses, rotated, revoked."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="include revoked keys")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = ApiKey.objects.all()
        if not options["all"]:
            keys = keys.filter(revoked_at__isnull=True)
        header = (
            f"{'name':<30} {'role':<9} {'prefix':<11} {'created':<16} {'last used':<16} {'uses':>8}  state"
        )
        self.stdout.write(header)
        for key in keys:
            api_key_usage_flush(api_key_id=key.pk)
            key.refresh_from_db(fields=["use_count"])
            state = f"revoked {_when(key.revoked_at)}" if key.revoked_at else "active"
            if key.rotated_at and not key.revoked_at:
                state += f" (rotated {_when(key.rotated_at)})"
            self.stdout.write(
                f"{key.name:<30} {key.role:<9} {key.prefix:<11} {_when(key.created_at):<16} "
                f"{_when(key.last_used_at):<16} {key.use_count:>8}  {state}"
            )
