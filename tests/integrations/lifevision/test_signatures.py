"""Callback signatures: what ``sign`` makes, ``verify`` accepts, and nothing else."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from integrations.lifevision.signatures import SignatureError, sign, verify

SECRET = "webhook-secret"
BODY = b'{"provider_id": "lv-1", "status": "delivered"}'
NOW = 1_777_000_000


def test_it_signs_t_dot_raw_body_with_hmac_sha256():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_a_signed_body_verifies():
    verify(SECRET, sign(SECRET, BODY, NOW), BODY, now=NOW)


def test_it_accepts_timestamps_within_tolerance_either_way():
    verify(SECRET, sign(SECRET, BODY, NOW - 300), BODY, now=NOW)
    verify(SECRET, sign(SECRET, BODY, NOW + 300), BODY, now=NOW)


def test_it_rejects_a_tampered_body():
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, sign(SECRET, BODY, NOW), BODY + b" ", now=NOW)


def test_it_rejects_a_tampered_timestamp():
    header = sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, header, BODY, now=NOW)


def test_it_rejects_the_wrong_secret():
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, sign("another-secret", BODY, NOW), BODY, now=NOW)


def test_it_rejects_an_old_timestamp():
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, sign(SECRET, BODY, NOW - 301), BODY, now=NOW)


def test_it_rejects_a_future_timestamp():
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, sign(SECRET, BODY, NOW + 301), BODY, now=NOW)


def test_the_tolerance_can_be_narrowed():
    with pytest.raises(SignatureError, match="tolerance"):
        verify(SECRET, sign(SECRET, BODY, NOW - 10), BODY, now=NOW, tolerance=5)


def test_any_matching_v1_is_enough_for_secret_rotation():
    good = sign(SECRET, BODY, NOW).split(",v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good}"

    verify(SECRET, header, BODY, now=NOW)


@pytest.mark.parametrize("header", [None, ""])
def test_it_rejects_a_missing_header(header):
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, header, BODY, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "v1=" + "a" * 64,
        f"t={NOW}",
        f"t=soon,v1={'a' * 64}",
        f"t={NOW},t={NOW},v1={'a' * 64}",
        f"t={NOW},v1=not-hex",
        f"t={NOW},v1={'a' * 63}",
        f"t={NOW},v1={'é' * 64}",
        f"t={NOW},v1={'a' * 64}," + "x" * 2000,
    ],
)
def test_it_rejects_a_malformed_header(header):
    with pytest.raises(SignatureError, match="malformed"):
        verify(SECRET, header, BODY, now=NOW)


def test_it_refuses_to_verify_without_a_secret():
    with pytest.raises(SignatureError):
        verify("", sign(SECRET, BODY, NOW), BODY, now=NOW)


def test_it_refuses_to_sign_without_a_secret():
    with pytest.raises(ValueError):
        sign("", BODY, NOW)
