"""The fake LifeVision server end to end, driven by the real client over loopback."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest
import requests

from comms.campaigns.providers import OutboundMessage
from integrations.errors import IntegrationError
from integrations.lifevision.client import LifeVisionClient
from integrations.lifevision.fake import FakeLifeVision
from integrations.lifevision.signatures import SignatureError, verify

from .conftest import API_KEY, WEBHOOK_SECRET, Collector, wait_for


def sms(external_id: str, to: str = "+4741234567", **fields: object) -> OutboundMessage:
    data: dict[str, object] = {"channel": "sms", "to": to, "sender": "FIT24", "text": "Hei! Svar STOPP."}
    data.update(fields)
    return OutboundMessage(external_id=external_id, **data)  # type: ignore[arg-type]


def email(external_id: str, to: str = "kari@example.no", **fields: object) -> OutboundMessage:
    data: dict[str, object] = {
        "channel": "email",
        "to": to,
        "sender": "FIT24 <n@fit24.no>",
        "subject": "Nyhetsbrev",
        "text": "Hei",
        "html": "<p>Hei</p>",
    }
    data.update(fields)
    return OutboundMessage(external_id=external_id, **data)  # type: ignore[arg-type]


def post_raw(fake: FakeLifeVision, body: bytes, key: str = API_KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Idempotency-Key": "k"}
    return requests.post(f"{fake.base_url}/v1/messages", data=body, headers=headers, timeout=5)


def verified_reports(collector: Collector) -> list[dict[str, object]]:
    reports = []
    for callback in collector.snapshot():
        verify(WEBHOOK_SECRET, callback.headers.get("x-lv-signature"), callback.body, now=time.time())
        reports.append(json.loads(callback.body))
    return reports


def test_it_accepts_valid_messages_with_provider_ids(fake, client):
    results = client.send_batch([sms("s-1"), email("e-1")])

    assert [(r.external_id, r.status, r.error_code) for r in results] == [
        ("s-1", "accepted", None),
        ("e-1", "accepted", None),
    ]
    assert all(r.provider_id and r.provider_id.startswith("lv-") for r in results)
    assert [m["external_id"] for m in fake.messages] == ["s-1", "e-1"]
    assert fake.messages[1]["subject"] == "Nyhetsbrev"


@pytest.mark.parametrize("to", ["41234567", "004741234567", "+47 412 34 567", "+0123456789"])
def test_it_rejects_an_sms_recipient_that_is_not_e164(client, to):
    (result,) = client.send_batch([sms("s-1", to=to)])

    assert (result.status, result.error_code) == ("rejected", "invalid_recipient")


def test_it_rejects_an_invalid_email_address(client):
    (result,) = client.send_batch([email("e-1", to="not-an-address")])

    assert (result.status, result.error_code) == ("rejected", "invalid_recipient")


def test_it_rejects_an_invalid_sms_sender(client):
    (result,) = client.send_batch([sms("s-1", sender="FAR-TOO-LONG-SENDER")])

    assert (result.status, result.error_code) == ("rejected", "invalid_sender")


def test_it_rejects_a_blocked_recipient(fake, client):
    fake.block("+4799999999")
    fake.block("Blocked@Example.no")

    results = client.send_batch([sms("s-1", to="+4799999999"), email("e-1", to="blocked@example.no")])

    assert [(r.status, r.error_code) for r in results] == [("rejected", "blocked_recipient")] * 2


def test_a_repeated_external_id_returns_the_first_result_and_is_stored_once(fake, client):
    (first,) = client.send_batch([sms("s-1")])
    (again,) = client.send_batch([sms("s-1", text="a different text")])

    assert again == first
    assert len(fake.messages) == 1
    assert fake.messages[0]["text"] == "Hei! Svar STOPP."


def test_a_duplicate_within_one_batch_is_stored_once(fake, client):
    first, second = client.send_batch([sms("s-1"), sms("s-1")])

    assert first == second
    assert len(fake.messages) == 1


def test_a_503_then_a_retry_with_the_same_ids_stores_one_copy(fake, client):
    fake.fail_next(1, status=503)
    batch = [sms("s-1"), email("e-1")]

    with pytest.raises(IntegrationError) as info:
        client.send_batch(batch)
    assert not info.value.permanent
    assert fake.messages == []

    results = client.send_batch(batch)

    assert [r.status for r in results] == ["accepted", "accepted"]
    assert sorted(m["external_id"] for m in fake.messages) == ["e-1", "s-1"]
    assert fake.requests == 2


def test_429_carries_retry_after(fake, client):
    fake.fail_next(1, status=429, retry_after=2)

    with pytest.raises(IntegrationError) as info:
        client.send_batch([sms("s-1")])

    assert (info.value.permanent, info.value.retry_after) == (False, 2.0)
    assert fake.messages == []


def test_failures_can_be_requested_over_http(fake, client):
    response = requests.post(
        f"{fake.base_url}/_fake/fail", json={"count": 2, "status": 429, "retry_after": 1}
    )
    assert response.status_code == 200

    for _ in range(2):
        with pytest.raises(IntegrationError) as info:
            client.send_batch([sms("s-1")])
        assert info.value.retry_after == 1.0
    assert client.send_batch([sms("s-1")])[0].status == "accepted"


def test_a_wrong_key_is_a_permanent_401(fake):
    with LifeVisionClient(fake.base_url, "wrong-key") as wrong, pytest.raises(IntegrationError) as info:
        wrong.send_batch([sms("s-1")])

    assert info.value.permanent
    assert "401" in info.value.message
    assert "wrong-key" not in info.value.message
    assert fake.messages == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"messages": []}',
        b'{"messages": [{"external_id": "s-1", "channel": "sms", "to": "+4741234567", "sender": "FIT24"}]}',
        b'{"messages": [{"external_id": "s-1", "channel": "fax", "to": "1", "sender": "X", "text": "t"}]}',
        b'{"messages": [{"external_id": "e-1", "channel": "email", "to": "a@b.no", "sender": "X", "text": "t"}]}',
        b'{"messages": [{"external_id": "s-1", "channel": "sms", "to": "+4741234567", "sender": "X",'
        b' "text": "t", "tags": "campaign:1"}]}',
    ],
)
def test_a_malformed_batch_is_refused_with_400(fake, body):
    assert post_raw(fake, body).status_code == 400
    assert fake.messages == []


def test_more_than_1000_messages_are_refused_with_400(fake):
    messages = [sms(f"s-{n}").to_json() for n in range(1001)]

    assert post_raw(fake, json.dumps({"messages": messages}).encode()).status_code == 400


def test_a_malformed_batch_is_a_permanent_error_for_the_client(fake, client):
    with pytest.raises(IntegrationError) as info:
        client.send_batch([sms("s-1", text="")])

    assert info.value.permanent
    assert "400" in info.value.message


def test_messages_can_be_read_and_reset_over_http(fake, client):
    client.send_batch([sms("s-1")])

    listing = requests.get(f"{fake.base_url}/_fake/messages", timeout=5).json()
    assert [m["external_id"] for m in listing["messages"]] == ["s-1"]
    assert listing["requests"] == 1

    assert requests.post(f"{fake.base_url}/_fake/reset", timeout=5).status_code == 200
    assert fake.messages == []
    assert fake.requests == 0


def test_delivery_reports_arrive_signed(fake, client, collector):
    results = client.send_batch(
        [sms("s-1", callback_url=collector.url()), email("e-1", callback_url=collector.url())]
    )

    assert wait_for(lambda: len(collector.snapshot()) == 2)
    reports = sorted(verified_reports(collector), key=lambda r: str(r["external_id"]))
    assert [(r["external_id"], r["status"], r["segment"], r["segments"]) for r in reports] == [
        ("e-1", "delivered", 1, 1),
        ("s-1", "delivered", 1, 1),
    ]
    assert {r["provider_id"] for r in reports} == {r.provider_id for r in results}
    assert all(c.path == "/hooks/lifevision/reports" for c in collector.snapshot())


def test_a_report_fails_verification_with_another_secret(fake, client, collector):
    client.send_batch([sms("s-1", callback_url=collector.url())])

    assert wait_for(lambda: len(collector.snapshot()) == 1)
    callback = collector.snapshot()[0]
    with pytest.raises(SignatureError):
        verify("another-secret", callback.headers.get("x-lv-signature"), callback.body, now=time.time())


@pytest.mark.parametrize("length", [160, 161, 306, 307, 400])
def test_a_long_sms_gets_one_report_per_segment(fake, client, collector, length):
    expected = 1 if length <= 160 else math.ceil(length / 153)
    client.send_batch([sms("s-1", text="x" * length, callback_url=collector.url())])

    assert wait_for(lambda: len(collector.snapshot()) == expected)
    reports = verified_reports(collector)
    assert sorted(int(str(r["segment"])) for r in reports) == list(range(1, expected + 1))
    assert {r["segments"] for r in reports} == {expected}


def test_no_reports_for_rejected_messages_or_messages_without_callback(fake, client, collector):
    client.send_batch([sms("s-1", to="12345", callback_url=collector.url()), sms("s-2")])
    client.send_batch([sms("s-3", callback_url=collector.url())])

    assert wait_for(lambda: len(collector.snapshot()) == 1)
    assert [r["external_id"] for r in verified_reports(collector)] == ["s-3"]


def test_a_duplicate_is_not_reported_again(fake, client, collector):
    client.send_batch([sms("s-1", callback_url=collector.url())])
    assert wait_for(lambda: len(collector.snapshot()) == 1)

    client.send_batch([sms("s-1", callback_url=collector.url()), sms("s-2", callback_url=collector.url())])

    assert wait_for(lambda: len(collector.snapshot()) == 2)
    assert sorted(str(r["external_id"]) for r in verified_reports(collector)) == ["s-1", "s-2"]


def test_a_refused_report_is_retried(fake, client, collector):
    collector.statuses = [500, 503]
    client.send_batch([sms("s-1", callback_url=collector.url())])

    assert wait_for(lambda: len(collector.snapshot()) == 1)
    assert verified_reports(collector)[0]["external_id"] == "s-1"


def test_an_unreachable_callback_does_not_break_the_server(fake, client):
    dead = Collector()  # bound, never served, then closed: its port refuses connections
    dead_url = dead.url()
    dead.server.server_close()

    client.send_batch([sms("s-1", callback_url=dead_url)])

    assert client.send_batch([sms("s-2")])[0].status == "accepted"


def test_reports_can_be_turned_off(collector):
    with (
        FakeLifeVision(
            api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, send_reports=False, report_delay=0
        ) as quiet,
        LifeVisionClient(quiet.base_url, API_KEY) as quiet_client,
    ):
        quiet_client.send_batch([sms("s-1", callback_url=collector.url())])
        # A synchronous report proves the collector listens; no automatic one may follow it.
        assert quiet.send_report("s-1", "failed", "unknown_subscriber") == 200
        assert not wait_for(lambda: len(collector.snapshot()) > 1, timeout=0.5)
    assert [r["status"] for r in verified_reports(collector)] == ["failed"]


def test_send_report_posts_a_signed_bounce(fake, client, collector):
    fake.send_reports = False
    (result,) = client.send_batch([email("e-1", callback_url=collector.url())])

    assert fake.send_report("e-1", "failed", "hard_bounce") == 200

    (report,) = verified_reports(collector)
    assert (report["provider_id"], report["status"], report["error_code"]) == (
        result.provider_id,
        "failed",
        "hard_bounce",
    )


def test_send_inbound_posts_a_signed_inbound_sms(fake, collector):
    url = collector.url("/hooks/lifevision/inbound")

    assert fake.send_inbound(url, "+4741234567", "2020", "Stopp") == 200

    (callback,) = collector.snapshot()
    verify(WEBHOOK_SECRET, callback.headers.get("x-lv-signature"), callback.body, now=time.time())
    inbound = json.loads(callback.body)
    assert (inbound["from"], inbound["to"], inbound["text"]) == ("+4741234567", "2020", "Stopp")
    assert inbound["provider_id"].startswith("lv-in-")
    assert inbound["received_at"].endswith("Z")


def test_send_inbound_reports_the_status_it_got(fake, collector):
    collector.statuses = [401]

    assert (
        fake.send_inbound(collector.url("/hooks/lifevision/inbound"), "+4741234567", "2020", "Stopp") == 401
    )


def test_callbacks_go_to_http_urls_only(fake):
    with pytest.raises(ValueError):
        fake.send_inbound("file:///etc/passwd", "+4741234567", "2020", "Stopp")


def test_it_runs_as_a_module():
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.lifevision.fake", "--port", "0", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        base_url = line.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:")
        with LifeVisionClient(base_url, "cli-key") as cli_client:
            assert cli_client.send_batch([sms("s-1")])[0].status == "accepted"
    finally:
        process.terminate()
        process.wait(timeout=5)
