"""Uploaded proofs of consent: stored by SHA-256, sealed in the evidence, deleted on erasure."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from comms.rights.erasure import contact_erase
from comms.suppression.models import ConsentEvidence, ProofFile
from comms.suppression.selectors import ledger_verify

PDF = b"%PDF-1.4\n% signed paper form of Kari Nordmann\n%%EOF\n"


@pytest.fixture(autouse=True)
def proof_dir(settings, tmp_path):
    settings.PROOF_DIR = tmp_path / "proofs"
    return settings.PROOF_DIR


def upload(api_keys, content=PDF, content_type="application/pdf", role="staff"):
    return Client().post(
        "/api/v1/evidence/proofs",
        {"file": SimpleUploadedFile("form.pdf", content, content_type=content_type)},
        headers={"Authorization": f"Bearer {api_keys[role]}"},
    )


def test_an_uploaded_proof_is_stored_under_its_sha256(api_keys, proof_dir):
    response = upload(api_keys)
    assert response.status_code == 201
    digest = hashlib.sha256(PDF).hexdigest()
    assert response.json()["sha256"] == digest
    assert (proof_dir / digest[:2] / digest).read_bytes() == PDF
    assert upload(api_keys).status_code == 201  # the same file again is stored once
    assert ProofFile.objects.count() == 1


@pytest.mark.parametrize(
    ("content", "content_type"), [(b"", "application/pdf"), (PDF, "text/html"), (PDF, "application/x-sh")]
)
def test_an_empty_or_unexpected_file_is_refused_naming_the_field(api_keys, content, content_type):
    response = upload(api_keys, content=content, content_type=content_type)
    assert response.status_code == 409  # the upload matches the document; its content is refused
    assert response.json()["field"] == "file"
    assert ProofFile.objects.count() == 0


def test_a_marketer_cannot_upload_proofs(api_keys):
    assert upload(api_keys, role="marketer").status_code == 403


def test_a_grant_seals_the_proof_hash_and_erasure_deletes_the_file_but_not_the_chain(
    api, api_keys, contact, purpose, staff, proof_dir
):
    digest = upload(api_keys).json()["sha256"]
    response = api("staff").post(
        "/consents",
        {
            "action": "grant",
            "contact_id": contact.pk,
            "channel": "email",
            "purpose": purpose.key,
            "source": "front_desk",
            "actor": "staff",
            "evidence": {"proof_sha256": digest},
        },
    )
    assert response.status_code == 201, response.content
    assert ConsentEvidence.objects.get(event_id=response.json()["id"]).proof_sha256 == digest

    contact_erase(contact=contact, source="rights_request", principal=staff)

    assert not (proof_dir / digest[:2] / digest).exists()
    assert ProofFile.objects.get(pk=digest).deleted_at is not None
    assert ConsentEvidence.objects.get(event_id=response.json()["id"]).proof_sha256 == digest
    assert ledger_verify().ok


def test_an_erased_address_can_be_reached_again_only_after_the_persons_own_confirmed_consent(
    make_contact, purpose, staff, person
):
    from comms.contacts.models import Contact
    from comms.contacts.services import ContactInput, contacts_import
    from comms.suppression import services
    from comms.suppression.gate import check

    erased = make_contact(email="kari@example.no")
    contact_erase(contact=erased, source="rights_request", principal=staff)
    contacts_import(
        rows=[ContactInput(brand="fit24", kind="lead", external_id="again", email="kari@example.no")]
    )
    again = Contact.objects.get(external_id="again")

    by_staff = services.consent_grant(
        contact=again, channel="email", purpose=purpose, basis="consent", source="front_desk", principal=staff
    )
    assert by_staff.pending_confirmation
    assert check(contact=again, channel="email", purpose=purpose).reason == "suppressed:erased"

    services.consent_confirm(grant=by_staff, source="web_form", principal=person)
    decision = check(contact=again, channel="email", purpose=purpose)
    assert (decision.allowed, decision.reason) == (True, "consent")
