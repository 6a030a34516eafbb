from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.accounts.models import ApiKey, Role
from comms.accounts.services import api_key_create
from comms.contacts.models import Brand
from comms.core import inprocess
from comms.ops.demo import seed_demo
from comms.studio.services import studio_user_upsert
from integrations.lifevision.fake import FakeLifeVision
from integrations.mailchimp.fake import FakeMailchimp


class Command(BaseCommand):
    help = (
        "Run comms for local use: migrate, seed demo data, start an in-process worker and "
        "scheduler, and serve the API and admin (http://127.0.0.1:8000 by default)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-seed", action="store_true", help="do not add demo data")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("rundev is for local use; production runs the Procfile's processes")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        call_command("ledger_chains", from_settings=True, stdout=self.stdout)
        if not options["no_seed"]:
            result = seed_demo()
            if result.created:
                self.stdout.write(f"demo data: {result.contacts} contacts, {result.events} ledger events")
            self._demo_credentials(_site(options["addrport"]))
        if not settings.LIFEVISION_BASE_URL:
            self._start_fake_lifevision(options["addrport"])
        if not settings.MAILCHIMP_API_KEY:
            self._start_fake_mailchimp()
        if "StubBroker" in settings.DRAMATIQ_BROKER["BROKER"]:
            inprocess.load_task_modules()
            inprocess.start_worker()
            inprocess.start_scheduler()
            self.stdout.write("in-process worker and scheduler running (no Redis configured)")
        call_command("runserver", options["addrport"], use_reloader=False)

    def _start_fake_lifevision(self, addrport: str) -> None:
        """No LifeVision configured: serve the built-in fake, which sends signed delivery
        reports back to this server."""
        fake = FakeLifeVision(port=0).start()
        settings.LIFEVISION_BASE_URL = fake.base_url
        settings.LIFEVISION_API_KEY = fake.api_key
        settings.LIFEVISION_WEBHOOK_SECRET = fake.webhook_secret
        if settings.PUBLIC_BASE_URL == "http://127.0.0.1:8000":
            settings.PUBLIC_BASE_URL = _site(addrport)
        self.stdout.write(
            f"fake LifeVision at {fake.base_url} (what it received: {fake.base_url}/_fake/messages)"
        )

    def _start_fake_mailchimp(self) -> None:
        """No Mailchimp configured: serve the built-in fake with one audience per brand."""
        audiences = {key: f"fake-{key}" for key in Brand.objects.values_list("key", flat=True)}
        fake = FakeMailchimp(port=0, lists=tuple(audiences.values())).start()
        settings.MAILCHIMP_API_KEY = fake.api_key
        settings.MAILCHIMP_SERVER = "us21"
        settings.MAILCHIMP_BASE_URL = fake.base_url
        settings.MAILCHIMP_AUDIENCES = audiences
        settings.MAILCHIMP_WEBHOOK_SECRET = settings.MAILCHIMP_WEBHOOK_SECRET or secrets.token_urlsafe(16)
        self.stdout.write(f"fake Mailchimp at {fake.base_url} (state: {fake.base_url}/_fake/state)")

    def _demo_credentials(self, site: str) -> None:
        """Create an admin user and one API key per role once, and show where they are kept."""
        path = Path(settings.BASE_DIR) / ".local" / "demo-credentials.txt"
        user_model = get_user_model()
        if (
            ApiKey.objects.filter(name__startswith="demo-").exists()
            and user_model.objects.filter(username="marketer").exists()
            and path.exists()
        ):
            self.stdout.write(f"demo admin login and API keys: {path}")
            return
        path.parent.mkdir(exist_ok=True)
        lines = []
        password = secrets.token_urlsafe(12)
        user = user_model.objects.filter(username="admin").first()
        if user is None:
            user_model.objects.create_superuser("admin", "admin@example.invalid", password)
        else:
            user.set_password(password)
            user.save()
        lines.append(f"admin login: admin / {password}  ({site}/admin/)")
        marketer_password = secrets.token_urlsafe(12)
        brands = list(Brand.objects.filter(key="fit24"))
        studio_user_upsert(
            username="marketer", password=marketer_password, email="marketer@example.invalid", brands=brands
        )
        lines.append(
            f"studio login (marketer of {', '.join(b.name for b in brands) or 'no brand'}): "
            f"marketer / {marketer_password}  ({site}/studio/)"
        )
        for role in Role.values:
            ApiKey.objects.filter(name=f"demo-{role}").delete()
            _, key = api_key_create(name=f"demo-{role}", role=role)
            lines.append(f"API key ({role}): {key}")
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.stdout.write("\n".join(lines))
        self.stdout.write(f"(kept in {path}; the API docs are at {site}/api/v1/docs)")


def _site(addrport: str) -> str:
    """The address a browser on this machine reaches ``runserver addrport`` at."""
    host = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
    return f"http://{host.replace('0.0.0.0', '127.0.0.1')}"
