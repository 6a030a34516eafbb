from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from comms.core.dbroles import RoleError, service_role_grant, service_role_problems


class Command(BaseCommand):
    help = (
        "As the owning role: create the service role if it is missing and grant it exactly what the "
        "code needs (comms/core/dbroles.py). Idempotent; run after every migration (manage.py release "
        "does). --check only reports what differs and exits 1 if anything does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--service-role",
            help="the role the processes connect as (default: the user of DATABASE_URL)",
        )
        parser.add_argument(
            "--password-from-env",
            metavar="VARIABLE",
            help="set the service role's password from this environment variable (creation, rotation); "
            "default: DATABASE_URL's password when the role is created",
        )
        parser.add_argument(
            "--database",
            default=None,
            help="the alias to connect as the owner (default: 'owner' from DATABASE_MIGRATE_URL if set)",
        )
        parser.add_argument("--check", action="store_true", help="report differences, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"] or settings.MIGRATE_DATABASE
        connection = connections[alias]
        if connection.vendor != "postgresql":
            raise CommandError("database roles exist on PostgreSQL only (SQLite has none)")
        service = settings.DATABASES["default"]
        role = options["service_role"] or service.get("USER")
        if not role:
            raise CommandError("name the service role: --service-role, or a user in DATABASE_URL")
        if options["check"]:
            problems = service_role_problems(connection=connection, role=role)
            for problem in problems:
                self.stdout.write(problem)
            if problems:
                raise CommandError(f"{len(problems)} privilege problem(s) for {role}")
            self.stdout.write(self.style.SUCCESS(f"{role} holds exactly the service privileges"))
            return
        password: str | None = None
        if options["password_from_env"]:
            password = os.environ.get(options["password_from_env"])
            if not password:
                raise CommandError(f"{options['password_from_env']} is not set")
        try:
            report = service_role_grant(
                connection=connection,
                role=role,
                password=password,
                password_if_created=(service.get("PASSWORD") or None) if role == service.get("USER") else None,
            )
        except RoleError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{'created' if report.created else 'updated'} {role}: {len(report.tables)} table(s) granted"
        )
        if report.missing_ledger_tables:
            self.stdout.write(f"ledger tables not there yet: {', '.join(report.missing_ledger_tables)}")
