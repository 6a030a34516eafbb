"""The campaigns HTTP API (/api/v1/campaigns) as a marketer uses it: create, validate, preview,
schedule, send, read counts and deliveries, change state; and who may do which."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from comms.campaigns.models import Campaign, Delivery
from tests.campaigns.campaign_helpers import Drain, grant, sms_stop

pytestmark = pytest.mark.django_db


@pytest.fixture
def drain(broker: Any, django_capture_on_commit_callbacks: Any) -> Drain:
    return Drain(broker, django_capture_on_commit_callbacks)


@pytest.fixture
def marketer(api: Any) -> Any:
    return api("marketer")


def _body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "brand": "fit24",
        "name": "Høsttilbud",
        "channel": "sms",
        "purpose": "fit24-newsletter",
        "text": "Hei {first_name}! 20% i dag.",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def _fields(response: Any) -> list[str]:
    """The fields a refusal names: each 422 error's ``loc`` (dotted, after body and payload),
    or the ``field`` of a 404 (unknown reference) or 409 (refused by the service)."""
    assert response.status_code in (404, 409, 422), response.content
    body = response.json()
    if isinstance(body["detail"], list):
        return [".".join(str(part) for part in item["loc"][2:]) for item in body["detail"]]
    return [body["field"]]


def test_a_marketer_creates_a_campaign(brand, purpose, marketer):
    response = marketer.post(
        "/campaigns", _body(audience={"kinds": ["member"], "centres": ["oslo"]}, sms_max_segments=1)
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["status"] == "draft" and data["purpose"] == "fit24-newsletter" and data["brand"] == "fit24"
    assert data["audience"] == {"kinds": ["member"], "centres": ["oslo"]}
    assert data["counts"] == {"total": 0, "by_status": {}, "by_reason": {}}
    assert data["created_by"].startswith("api-key:")
    assert Campaign.objects.get(pk=data["id"]).sms_max_segments == 1


@pytest.mark.parametrize("purpose_value", [None, ""])
def test_a_campaign_needs_a_purpose(brand, purpose, marketer, purpose_value):
    assert "purpose" in _fields(marketer.post("/campaigns", _body(purpose=purpose_value)))
    assert not Campaign.objects.exists()


def test_an_unknown_purpose_is_named(brand, purpose, marketer):
    assert _fields(marketer.post("/campaigns", _body(purpose="no-such-purpose"))) == ["purpose"]


def test_an_unknown_audience_field_is_named(brand, purpose, marketer):
    response = marketer.post("/campaigns", _body(audience={"kinds": ["member"], "segment": "vip"}))
    assert response.status_code == 422  # the document lists the audience fields
    assert _fields(response) == ["audience.segment"]


def test_a_bad_audience_value_is_named(brand, purpose, marketer):
    assert _fields(marketer.post("/campaigns", _body(audience={"centres": ["tromso"]}))) == [
        "audience.centres"
    ]
    assert _fields(marketer.post("/campaigns", _body(audience={"age_min": "old"}))) == ["audience.age_min"]


def test_an_sms_over_the_marketers_segment_limit_is_refused_naming_text(brand, purpose, marketer):
    text = "Trening gjør deg glad. " * 6  # ~140 characters: two segments with the opt-out line
    response = marketer.post("/campaigns", _body(text=text, sms_max_segments=1))
    assert _fields(response) == ["text"]
    assert response.status_code == 409
    assert "segments" in response.json()["detail"]
    assert marketer.post("/campaigns", _body(text=text, sms_max_segments=2)).status_code == 201


def test_an_unknown_placeholder_is_refused_naming_text(brand, purpose, marketer):
    assert _fields(marketer.post("/campaigns", _body(text="Hei {fornavn}!"))) == ["text"]


def test_a_purpose_that_does_not_allow_the_channel_is_refused(brand, make_purpose, marketer):
    make_purpose(key="fit24-email-only", channels=("email",))
    response = marketer.post("/campaigns", _body(purpose="fit24-email-only", channel="sms"))
    assert _fields(response) == ["channel"]


def test_an_email_campaign_needs_a_subject(brand, purpose, marketer):
    assert _fields(marketer.post("/campaigns", _body(channel="email"))) == ["subject"]
    assert marketer.post("/campaigns", _body(channel="email", subject="Nytt")).status_code == 201


def test_schedule_in_the_past_is_refused_naming_send_at(brand, purpose, marketer):
    campaign_id = marketer.post("/campaigns", _body()).json()["id"]
    past = (timezone.now() - dt.timedelta(minutes=1)).isoformat()
    assert _fields(marketer.post(f"/campaigns/{campaign_id}/schedule", {"send_at": past})) == ["send_at"]
    naive = (timezone.now() + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert "send_at" in _fields(marketer.post(f"/campaigns/{campaign_id}/schedule", {"send_at": naive}))

    future = (timezone.now() + dt.timedelta(hours=1)).replace(microsecond=0)
    response = marketer.post(f"/campaigns/{campaign_id}/schedule", {"send_at": future.isoformat()})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "scheduled"
    assert dt.datetime.fromisoformat(response.json()["send_at"]) == future


def test_preview_counts_and_writes_nothing(brand, purpose, make_contact, marketer):
    for _ in range(3):
        grant(make_contact(), purpose)
    make_contact()
    stopped = make_contact()
    grant(stopped, purpose)
    sms_stop(stopped)
    campaign_id = marketer.post("/campaigns", _body()).json()["id"]

    response = marketer.post(f"/campaigns/{campaign_id}/preview")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "audience": 5,
        "would_send": 3,
        "would_deny": {"no_consent": 1, "suppressed:sms_stop": 1},
    }
    assert not Delivery.objects.exists()
    assert marketer.get(f"/campaigns/{campaign_id}").json()["status"] == "draft"


def test_send_then_read_counts_by_status_and_reason_and_the_denied_deliveries(
    brand, purpose, make_contact, marketer, fake_lifevision, drain
):
    allowed = [make_contact() for _ in range(3)]
    for contact in allowed:
        grant(contact, purpose)
    never = [make_contact() for _ in range(2)]
    stopped = make_contact()
    grant(stopped, purpose)
    sms_stop(stopped)
    campaign_id = marketer.post("/campaigns", _body()).json()["id"]

    response = drain.call(marketer.post, f"/campaigns/{campaign_id}/send")
    assert response.status_code == 200, response.content
    drain()

    data = marketer.get(f"/campaigns/{campaign_id}").json()
    assert data["status"] == "sent" and data["started_at"] and data["finished_at"]
    assert data["counts"] == {
        "total": 6,
        "by_status": {"sent": 3, "denied": 3},
        "by_reason": {"sent": {"consent": 3}, "denied": {"no_consent": 2, "suppressed:sms_stop": 1}},
    }

    denied = marketer.get(f"/campaigns/{campaign_id}/deliveries", status="denied").json()
    assert denied["count"] == 3
    assert {d["contact_id"] for d in denied["items"]} == {c.pk for c in [*never, stopped]}
    assert all(d["status"] == "denied" and not d["provider_id"] for d in denied["items"])
    by_reason = marketer.get(f"/campaigns/{campaign_id}/deliveries", reason="suppressed:sms_stop").json()
    assert [d["contact_id"] for d in by_reason["items"]] == [stopped.pk]
    assert by_reason["items"][0]["decision_event_id"] is not None
    sent = marketer.get(f"/campaigns/{campaign_id}/deliveries", status="sent").json()["items"]
    assert {d["contact_id"] for d in sent} == {c.pk for c in allowed}
    assert {d["provider_id"] for d in sent} == {m["provider_id"] for m in fake_lifevision.messages}
    assert marketer.get(f"/campaigns/{campaign_id}/deliveries", status="nonsense").status_code == 422


def test_state_changes_and_invalid_transitions_are_409(brand, purpose, make_contact, marketer, drain):
    campaign_id = marketer.post("/campaigns", _body()).json()["id"]
    assert marketer.post(f"/campaigns/{campaign_id}/pause").status_code == 409  # a draft
    assert marketer.post(f"/campaigns/{campaign_id}/resume").status_code == 409

    future = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    assert marketer.post(f"/campaigns/{campaign_id}/schedule", {"send_at": future}).status_code == 200
    response = marketer.post(f"/campaigns/{campaign_id}/pause")
    assert (response.status_code, response.json()["status"]) == (200, "paused")
    assert marketer.post(f"/campaigns/{campaign_id}/pause").status_code == 409
    response = marketer.post(f"/campaigns/{campaign_id}/resume")
    assert (response.status_code, response.json()["status"]) == (200, "scheduled")
    response = marketer.post(f"/campaigns/{campaign_id}/cancel")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    for action in ("cancel", "resume", "pause", "send"):
        response = marketer.post(f"/campaigns/{campaign_id}/{action}")
        assert response.status_code == 409, action
        assert "cancelled" in response.json()["detail"]
    assert marketer.post(f"/campaigns/{campaign_id}/schedule", {"send_at": future}).status_code == 409
    assert marketer.patch(f"/campaigns/{campaign_id}", {"text": "Ny"}).status_code == 409


def test_a_campaign_that_started_sending_cannot_be_edited(brand, purpose, make_contact, marketer, drain):
    grant(make_contact(), purpose)
    campaign_id = marketer.post("/campaigns", _body()).json()["id"]
    response = marketer.patch(f"/campaigns/{campaign_id}", {"text": "Hei {first_name}, nytt tilbud!"})
    assert (response.status_code, response.json()["text"]) == (200, "Hei {first_name}, nytt tilbud!")
    assert _fields(marketer.patch(f"/campaigns/{campaign_id}", {"audience": {"nope": 1}})) == [
        "audience.nope"
    ]

    drain.call(marketer.post, f"/campaigns/{campaign_id}/send")
    assert drain.step(queue_name="campaigns")  # started: the deliveries exist
    assert marketer.patch(f"/campaigns/{campaign_id}", {"text": "Endret"}).status_code == 409


def test_an_unknown_campaign_is_404(brand, marketer):
    assert marketer.get("/campaigns/999999").status_code == 404
    assert marketer.post("/campaigns/999999/preview").status_code == 404


def test_only_marketing_roles_may_change_campaigns(brand, purpose, api, make_contact):
    campaign_id = api("marketer").post("/campaigns", _body()).json()["id"]
    staff = api("staff")
    future = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    writes = [
        ("post", "/campaigns", _body()),
        ("patch", f"/campaigns/{campaign_id}", {"name": "Nytt navn"}),
        ("post", f"/campaigns/{campaign_id}/preview", None),
        ("post", f"/campaigns/{campaign_id}/schedule", {"send_at": future}),
        ("post", f"/campaigns/{campaign_id}/send", None),
        ("post", f"/campaigns/{campaign_id}/pause", None),
        ("post", f"/campaigns/{campaign_id}/resume", None),
        ("post", f"/campaigns/{campaign_id}/cancel", None),
    ]
    for method, path, body in writes:
        response = getattr(staff, method)(path, body)
        assert response.status_code == 403, (method, path, response.status_code)
    assert Campaign.objects.count() == 1
    assert Campaign.objects.get().status == "draft" and Campaign.objects.get().name == "Høsttilbud"
    assert api(None).post("/campaigns", _body()).status_code == 401
    assert api(None).get(f"/campaigns/{campaign_id}").status_code == 401
