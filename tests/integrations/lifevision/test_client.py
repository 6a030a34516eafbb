"""The LifeVision transport against a mocked HTTP layer: one status, one outcome."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
import responses
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from comms.campaigns.providers import MessageResult, OutboundMessage
from integrations.errors import IntegrationError
from integrations.lifevision.client import LifeVisionClient

BASE = "https://api.lifevision.example/"
URL = "https://api.lifevision.example/v1/messages"
KEY = "secret-api-key-do-not-leak"


def sms(external_id: str = "id-1", **fields: object) -> OutboundMessage:
    data: dict[str, object] = {
        "external_id": external_id,
        "channel": "sms",
        "to": "+4741234567",
        "sender": "FIT24",
        "text": "Hei! Svar STOPP til 2020 for å melde deg av.",
    }
    data.update(fields)
    return OutboundMessage(**data)  # type: ignore[arg-type]


def accepted(*external_ids: str) -> dict[str, object]:
    return {
        "messages": [
            {"external_id": eid, "provider_id": f"lv-{eid}", "status": "accepted", "error_code": None}
            for eid in external_ids
        ]
    }


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client() -> Iterator[LifeVisionClient]:
    with LifeVisionClient(BASE, KEY) as lv_client:
        yield lv_client


def send_expecting_error(client: LifeVisionClient, *messages: OutboundMessage) -> IntegrationError:
    with pytest.raises(IntegrationError) as info:
        client.send_batch(list(messages) or [sms()])
    assert KEY not in info.value.message
    assert KEY not in str(info.value)
    return info.value


def test_it_posts_the_batch_with_key_and_first_external_id_as_idempotency_key(client, mocked):
    mocked.post(URL, status=202, json=accepted("id-1", "id-2"))

    client.send_batch([sms("id-1"), sms("id-2", callback_url="https://comms.example/hooks", tags=["c:1"])])

    request = mocked.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "id-1"
    sent = json.loads(request.body)["messages"]
    assert [m["external_id"] for m in sent] == ["id-1", "id-2"]
    assert "subject" not in sent[0] and "callback_url" not in sent[0]
    assert sent[1]["callback_url"] == "https://comms.example/hooks"
    assert sent[1]["tags"] == ["c:1"]


def test_it_sends_email_fields_and_headers(client, mocked):
    mocked.post(URL, status=202, json=accepted("e-1"))
    email = OutboundMessage(
        external_id="e-1",
        channel="email",
        to="kari@example.no",
        sender="FIT24 <n@fit24.no>",
        text="Hei",
        subject="Nyhetsbrev",
        html="<p>Hei</p>",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )

    client.send_batch([email])

    sent = json.loads(mocked.calls[0].request.body)["messages"][0]
    assert sent["subject"] == "Nyhetsbrev"
    assert sent["html"] == "<p>Hei</p>"
    assert sent["headers"] == {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def test_it_returns_results_in_message_order(client, mocked):
    body = {
        "messages": [
            {
                "external_id": "b",
                "provider_id": "lv-b",
                "status": "rejected",
                "error_code": "invalid_recipient",
            },
            {"external_id": "a", "provider_id": "lv-a", "status": "accepted", "error_code": None},
        ]
    }
    mocked.post(URL, status=202, json=body)

    results = client.send_batch([sms("a"), sms("b")])

    assert results == [
        MessageResult("a", "lv-a", "accepted", None),
        MessageResult("b", "lv-b", "rejected", "invalid_recipient"),
    ]


def test_it_refuses_more_than_1000_messages_without_calling_out(client, mocked):
    with pytest.raises(ValueError):
        client.send_batch([sms(f"id-{n}") for n in range(1001)])
    assert len(mocked.calls) == 0


def test_it_sends_1000_messages(client, mocked):
    ids = [f"id-{n}" for n in range(1000)]
    mocked.post(URL, status=202, json=accepted(*ids))

    assert len(client.send_batch([sms(eid) for eid in ids])) == 1000


def test_it_sends_nothing_for_an_empty_batch(client, mocked):
    assert client.send_batch([]) == []
    assert len(mocked.calls) == 0


def test_400_is_permanent_and_quotes_status_and_body(client, mocked):
    mocked.post(URL, status=400, json={"error": "bad request", "detail": "messages[0].to is required"})

    error = send_expecting_error(client)

    assert error.permanent
    assert "400" in error.message
    assert "messages[0].to is required" in error.message


def test_401_is_permanent_and_never_shows_the_key(client, mocked):
    mocked.post(URL, status=401, body=f"invalid key Bearer {KEY}")

    error = send_expecting_error(client)

    assert error.permanent
    assert "401" in error.message


def test_a_key_echoed_at_the_excerpt_boundary_is_not_partly_shown(client, mocked):
    mocked.post(URL, status=401, body="x" * 190 + KEY)

    assert KEY[:8] not in send_expecting_error(client).message


def test_other_client_errors_are_permanent(client, mocked):
    mocked.post(URL, status=404, body="no such route")

    assert send_expecting_error(client).permanent


def test_a_redirect_is_not_followed_and_is_permanent(client, mocked):
    mocked.post(URL, status=301, headers={"Location": "https://elsewhere.example/v1/messages"})

    assert send_expecting_error(client).permanent
    assert len(mocked.calls) == 1


def test_long_error_bodies_are_cut_short(client, mocked):
    mocked.post(URL, status=400, body="x" * 10_000)

    assert len(send_expecting_error(client).message) < 300


def test_429_is_transient_with_retry_after(client, mocked):
    mocked.post(URL, status=429, headers={"Retry-After": "7"}, body="slow down")

    error = send_expecting_error(client)

    assert not error.permanent
    assert error.retry_after == 7.0


@pytest.mark.parametrize("header", [None, "soon", "-3", "nan"])
def test_429_without_a_usable_retry_after_waits_one_second(client, mocked, header):
    headers = {} if header is None else {"Retry-After": header}
    mocked.post(URL, status=429, headers=headers)

    assert send_expecting_error(client).retry_after == 1.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(client, mocked, status):
    mocked.post(URL, status=status, body="upstream down")

    error = send_expecting_error(client)

    assert not error.permanent
    assert str(status) in error.message
    assert error.retry_after is None


def test_a_connection_error_is_transient(client, mocked):
    mocked.post(URL, body=requests.ConnectionError(f"refused with Bearer {KEY}"))

    assert not send_expecting_error(client).permanent


def test_a_timeout_is_transient(client, mocked):
    mocked.post(URL, body=requests.ReadTimeout("read timed out"))

    assert not send_expecting_error(client).permanent


def test_a_202_with_invalid_json_is_transient(client, mocked):
    mocked.post(URL, status=202, body="<html>accepted</html>")

    assert not send_expecting_error(client).permanent


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"results": []},
        {"messages": "id-1"},
        {"messages": ["id-1"]},
        {
            "messages": [
                {"external_id": "id-1", "provider_id": "lv-1", "status": "queued", "error_code": None}
            ]
        },
        {"messages": [{"external_id": "id-1", "provider_id": 7, "status": "accepted", "error_code": None}]},
        {"messages": [{"provider_id": "lv-1", "status": "accepted", "error_code": None}]},
    ],
)
def test_a_malformed_202_is_transient(client, mocked, body):
    mocked.post(URL, status=202, json=body)

    assert not send_expecting_error(client, sms("id-1")).permanent


def test_a_202_missing_a_result_is_transient(client, mocked):
    mocked.post(URL, status=202, json=accepted("id-1"))

    error = send_expecting_error(client, sms("id-1"), sms("id-2"))

    assert not error.permanent
    assert "id-2" in error.message


def test_from_settings_reads_base_url_and_key():
    with override_settings(LIFEVISION_BASE_URL=BASE, LIFEVISION_API_KEY=KEY):
        lv_client = LifeVisionClient.from_settings()
    assert lv_client.messages_url == URL
    assert KEY not in repr(lv_client)


def test_from_settings_refuses_missing_keys():
    with (
        override_settings(LIFEVISION_BASE_URL=BASE, LIFEVISION_API_KEY=""),
        pytest.raises(ImproperlyConfigured),
    ):
        LifeVisionClient.from_settings()
