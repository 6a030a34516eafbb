"""The admin: every page of the ledger and contacts renders for a superuser, the ledger cannot be
added to or deleted from there, and editing a purpose's notice text publishes a new version."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_create
from comms.contacts.models import Contact
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, Purpose, PurposeNotice, Suppression
from comms.suppression.services import Evidence, Principal


@pytest.fixture
def admin_client_(db: Any) -> Client:
    user = User.objects.create_superuser("root", "root@example.no", None)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def objects(contact: Contact, purpose: Purpose, staff: Principal) -> dict[str, Any]:
    event = ledger.consent_grant(
        contact=contact,
        channel="email",
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=staff,
        evidence=Evidence(ip="203.0.113.9", user_agent="Firefox"),
    )
    _, suppression = ledger.suppression_add(
        channel="email", address="bounce@example.no", reason="hard_bounce", source="api", principal=staff
    )
    assert suppression is not None
    key, _ = api_key_create(name="admin-test", role="staff")
    return {
        "contact": contact,
        "purpose": purpose,
        "consentevent": event,
        "suppression": suppression,
        "apikey": key,
    }


PAGES = [
    ("contacts", "contact"),
    ("suppression", "purpose"),
    ("suppression", "consentevent"),
    ("suppression", "suppression"),
    ("accounts", "apikey"),
]


@pytest.mark.parametrize(("app", "model"), PAGES)
def test_changelist_and_change_pages_render(admin_client_, objects, app, model):
    changelist = admin_client_.get(reverse(f"admin:{app}_{model}_changelist"))
    assert changelist.status_code == 200
    model_class = changelist.context["cl"].model
    assert changelist.context["cl"].result_count == model_class.objects.count() >= 1
    change = admin_client_.get(reverse(f"admin:{app}_{model}_change", args=[objects[model].pk]))
    assert change.status_code == 200


@pytest.mark.parametrize("model", ["consentevent", "suppression"])
def test_the_ledger_has_no_add_or_delete_in_the_admin(admin_client_, objects, model):
    pk = objects[model].pk
    changelist = admin_client_.get(reverse(f"admin:suppression_{model}_changelist"))
    assert changelist.context["has_add_permission"] is False
    assert reverse(f"admin:suppression_{model}_add") not in changelist.content.decode()
    action_form = changelist.context["action_form"]
    if action_form is not None:
        assert "delete_selected" not in dict(action_form.fields["action"].choices)
    assert admin_client_.get(reverse(f"admin:suppression_{model}_add")).status_code == 403
    assert admin_client_.get(reverse(f"admin:suppression_{model}_delete", args=[pk])).status_code == 403
    assert (
        admin_client_.post(
            reverse(f"admin:suppression_{model}_delete", args=[pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    change = admin_client_.get(reverse(f"admin:suppression_{model}_change", args=[pk]))
    assert change.context["has_delete_permission"] is False
    assert change.context["has_change_permission"] is False
    assert ConsentEvent.objects.filter(pk=objects["consentevent"].pk).exists()
    assert Suppression.objects.filter(pk=objects["suppression"].pk).exists()


def test_api_keys_are_not_added_in_the_admin(admin_client_, objects):
    assert admin_client_.get(reverse("admin:accounts_apikey_add")).status_code == 403
    assert ApiKey.objects.count() == 1


def _form_data(response: Any) -> dict[str, Any]:
    """The POST body the browser would send back for an admin change form, unchanged."""
    data: dict[str, Any] = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        if hasattr(value, "pk"):
            value = value.pk
        data[name] = value
    for formset in response.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name in management.fields:
            data[f"{management.prefix}-{name}"] = management.initial.get(name, management[name].value())
        for index, inline_form in enumerate(formset.formset.forms):
            pk_name = inline_form._meta.model._meta.pk.name
            data[f"{formset.formset.prefix}-{index}-{pk_name}"] = inline_form.instance.pk
    return data


def test_saving_a_changed_notice_text_publishes_a_new_version(admin_client_, objects):
    purpose = objects["purpose"]
    url = reverse("admin:suppression_purpose_change", args=[purpose.pk])
    page = admin_client_.get(url)
    data = _form_data(page)
    assert data["notice_text"] == "Notice for fit24-newsletter"

    # Unchanged text: no new version.
    response = admin_client_.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    assert PurposeNotice.objects.filter(purpose=purpose).count() == 1

    data["notice_text"] = "We now also send SMS about classes."
    data["name"] = "Newsletter (renamed)"
    response = admin_client_.post(url, data)
    assert response.status_code == 302
    notices = list(
        PurposeNotice.objects.filter(purpose=purpose).order_by("version").values_list("version", "text")
    )
    assert notices == [(1, "Notice for fit24-newsletter"), (2, "We now also send SMS about classes.")]
    latest = PurposeNotice.objects.get(purpose=purpose, version=2)
    assert latest.created_by is not None and latest.created_by.username == "root"
    purpose.refresh_from_db()
    assert purpose.name == "Newsletter (renamed)"
    # The grant made before keeps pointing at the version it was given to.
    granted = ConsentEvent.objects.select_related("notice").get(pk=objects["consentevent"].pk)
    assert granted.notice is not None and granted.notice.version == 1


def test_a_purpose_without_channels_is_refused_by_the_form(admin_client_, objects):
    purpose = objects["purpose"]
    url = reverse("admin:suppression_purpose_change", args=[purpose.pk])
    data = _form_data(admin_client_.get(url))
    data.pop("allows_email", None)
    data.pop("allows_sms", None)
    response = admin_client_.post(url, data)
    assert response.status_code == 200
    assert "A purpose needs at least one channel." in response.content.decode()
    purpose.refresh_from_db()
    assert purpose.channels == ["email", "sms"]


def test_adding_a_purpose_in_the_admin_publishes_notice_version_1(admin_client_, brand):
    response = admin_client_.post(
        reverse("admin:suppression_purpose_add"),
        {
            "brand": brand.pk,
            "key": "fit24-classes",
            "name": "Classes",
            "allows_email": "on",
            "notice_text": "We tell you about new classes.",
            "notices-TOTAL_FORMS": "0",
            "notices-INITIAL_FORMS": "0",
            "notices-MIN_NUM_FORMS": "0",
            "notices-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    purpose = Purpose.objects.get(key="fit24-classes")
    assert purpose.channels == ["email"]
    assert list(purpose.notices.values_list("version", "text")) == [(1, "We tell you about new classes.")]
