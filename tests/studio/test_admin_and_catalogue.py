"""The admin speaks Norwegian about every model and links campaigns to the studio; the
catalogue is complete and its compiled .mo matches the .po."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation

from tests.campaigns.campaign_helpers import make_campaign

LOCALE = Path(__file__).resolve().parents[2] / "comms" / "locale" / "nb" / "LC_MESSAGES"
DJANGO_APPS = {"auth", "contenttypes", "sessions", "admin", "dramatiq_crontab", "django_dramatiq"}


def _po_entries() -> dict[str, str]:
    text = (LOCALE / "django.po").read_text()
    entries = {}
    for block in text.split("\n\n")[1:]:
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', body, re.M)
        msgstr = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', body, re.M)
        assert msgid and msgstr, block
        entries[_unquote(msgid.group(1))] = _unquote(msgstr.group(1))
    return entries


def _unquote(lines: str) -> str:
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', lines))
    return text.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def test_every_string_is_translated_and_the_mo_is_compiled_from_the_po():
    entries = _po_entries()
    assert len(entries) > 200
    assert [msgid for msgid, msgstr in entries.items() if not msgstr] == []
    with (LOCALE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    stale = [msgid for msgid, msgstr in entries.items() if "%(" not in msgid and compiled.gettext(msgid) != msgstr]
    assert stale == [], "run: bin/manage compilemessages (or msgfmt) after editing the .po"


def test_every_model_has_a_norwegian_name_and_plural():
    with translation.override("nb"):
        untranslated = [
            f"{model._meta.app_label}.{model.__name__}"
            for model in apps.get_models()
            if model._meta.app_label not in DJANGO_APPS
            and not (
                _is_lazy(model._meta.verbose_name)
                and _is_lazy(model._meta.verbose_name_plural)
                and str(model._meta.verbose_name) != _english(model._meta.verbose_name)
                and str(model._meta.verbose_name_plural) != _english(model._meta.verbose_name_plural)
            )
        ]
    assert untranslated == []


def _english(value: object) -> str:
    with translation.override("en"):
        return str(value)


def _is_lazy(value: object) -> bool:
    return type(value).__name__ == "__proxy__"


@pytest.mark.django_db
def test_the_campaign_admin_is_norwegian_and_links_to_the_studio(brand, make_purpose):
    campaign = make_campaign(brand, make_purpose(), name="Vinter-SMS")
    admin = User.objects.create_superuser("root", "root@example.no", "pw-123456789")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/campaigns/campaign/").content.decode()
    assert "Velg kampanje du ønsker å endre" in page
    assert f'href="/studio/campaigns/{campaign.pk}/"' in page and "Åpne i studioet" in page
    index = client.get("/admin/").content.decode()
    assert "Utsendinger" in index and "Deliverys" not in index
    assert "Kampanjer" in index and "Oppfølgingsregler" in index
