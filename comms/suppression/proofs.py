"""Proofs of consent (signed paper forms, screenshots) stored by their SHA-256, which an
event's evidence names."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from comms.errors import InvalidInput
from comms.suppression.models import (
    ProofFile,
)

# --- proofs of consent ----------------------------------------------------------------------

PROOF_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/heic", "image/tiff"})


def _proof_path(sha256: str) -> Path:
    return Path(settings.PROOF_DIR) / sha256[:2] / sha256


def proof_store(*, content: bytes, content_type: str, uploaded_by: str = "") -> ProofFile:
    """Keep an uploaded proof of consent under its SHA-256 and return its row; a grant then
    names the hash in its evidence. Uploading the same file twice stores it once."""
    if not content:
        raise InvalidInput("file", "the file is empty")
    if len(content) > settings.PROOF_MAX_BYTES:
        raise InvalidInput("file", f"is larger than {settings.PROOF_MAX_BYTES} bytes")
    if content_type not in PROOF_TYPES:
        raise InvalidInput("file", f"must be one of {', '.join(sorted(PROOF_TYPES))}")
    digest = hashlib.sha256(content).hexdigest()
    path = _proof_path(digest)
    with transaction.atomic():
        proof = ProofFile.objects.select_for_update().filter(pk=digest).first()
        if proof is None or proof.deleted_at is not None or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(content)
            tmp.replace(path)
        if proof is None:
            proof = ProofFile.objects.create(
                sha256=digest, size=len(content), content_type=content_type, uploaded_by=uploaded_by[:100]
            )
        elif proof.deleted_at is not None:
            proof.deleted_at = None
            proof.save(update_fields=["deleted_at"])
    return proof


def proofs_delete(*, sha256s: Iterable[str]) -> int:
    """Delete stored proof files (erasure); the sealed hashes stay in the ledger."""
    deleted = 0
    for proof in ProofFile.objects.filter(pk__in=[s for s in sha256s if s], deleted_at__isnull=True):
        _proof_path(proof.sha256).unlink(missing_ok=True)
        proof.deleted_at = timezone.now()
        proof.save(update_fields=["deleted_at"])
        deleted += 1
    return deleted
