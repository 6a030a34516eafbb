"""Issue 11: a preview of a large audience never holds a web request. Above
COMMS_PREVIEW_INLINE_MAX it is a job (``AudiencePreview``) that the ``run_audience_preview``
actor decides range by range of contact ids; the marketer follows its progress in the API and
the admin, and its final counts are exactly the inline preview's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from dramatiq.middleware.time_limit import TimeLimitExceeded

from comms.campaigns import previews, selectors, tasks
from comms.campaigns.models import AudiencePreview, Campaign, Delivery, PreviewStatus
from comms.contacts.models import Brand, Contact
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, Purpose
from tests.campaigns.campaign_helpers import PERSON, Drain, grant, make_campaign, sms_stop

pytestmark = pytest.mark.django_db

STEP = 4


@pytest.fixture
def drain(broker: Any, django_capture_on_commit_callbacks: Any) -> Drain:
    return Drain(broker, django_capture_on_commit_callbacks)


@pytest.fixture
def marketer(api: Any) -> Any:
    return api("marketer")


@pytest.fixture
def small_limit(settings: Any) -> Any:
    """Audiences above 10 contacts are previewed by a job, 4 contact ids at a time."""
    settings.PREVIEW_INLINE_MAX = 10
    settings.PREVIEW_STEP_IDS = STEP
    return settings


@pytest.fixture
def audience(make_contact: Callable[..., Contact], purpose: Purpose) -> list[Contact]:
    """25 SMS contacts with every kind of outcome: allowed, never asked, withdrawn from the
    purpose, STOPP (suppressed), objected; a few tagged ``yoga``."""
    people = []
    for n in range(25):
        contact = make_contact(tags=["yoga"] if n % 3 == 0 else [])
        people.append(contact)
        if n % 5 == 4:
            continue  # no_consent
        grant(contact, purpose)
        if n % 5 == 1:
            ledger.consent_withdraw(
                contact=contact, channel="sms", purpose=purpose, source="preference_centre", principal=PERSON
            )
        elif n % 5 == 2:
            sms_stop(contact)
        elif n == 3:
            ledger.objection_record(contact=contact, source="preference_centre", principal=PERSON)
    return people


def _preview_job(response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.content
    return dict(response.json())


@pytest.mark.parametrize("filters", [{}, {"tags": ["yoga"]}], ids=["whole-brand", "tagged"])
def test_a_large_audience_is_previewed_by_a_job_with_exactly_the_inline_counts(
    brand: Brand,
    purpose: Purpose,
    audience: list[Contact],
    small_limit: Any,
    marketer: Any,
    drain: Drain,
    monkeypatch: pytest.MonkeyPatch,
    filters: dict[str, Any],
) -> None:
    campaign = make_campaign(brand, purpose, audience=filters)
    expected = selectors.campaign_preview(campaign=campaign)
    events = ConsentEvent.objects.count()
    small_limit.PREVIEW_INLINE_MAX = expected.audience - 1

    seen: list[int] = []
    counts = gate.audience_counts

    def spy(**kwargs: Any) -> Any:
        seen.append(AudiencePreview.objects.get().decided)
        return counts(**kwargs)

    monkeypatch.setattr(previews, "audience_counts", spy)
    job = _preview_job(drain.call(marketer.post, f"/campaigns/{campaign.pk}/preview"))
    assert (job["status"], job["total"], job["decided"], job["progress"]) == (
        "queued",
        expected.audience,
        0,
        0.0,
    )
    assert job["campaign_id"] == campaign.pk and job["would_deny"] == {}

    assert drain() == 1 and drain.ran["run_audience_preview"] == 1

    done = marketer.get(f"/campaigns/{campaign.pk}/previews/{job['id']}").json()
    assert done["status"] == "done" and done["progress"] == 1.0 and done["error"] == ""
    assert (done["audience"], done["decided"], done["total"]) == (expected.audience,) * 3
    assert done["would_send"] == expected.would_send
    assert done["would_deny"] == expected.would_deny
    if not filters:
        assert set(expected.would_deny) == {
            "no_consent",
            "withdrawn",
            "suppressed:sms_stop",
            "suppressed:objection",
        }
    assert done["started_at"] and done["finished_at"]
    # Progress advanced range by range: several ranges, each one saved before the next.
    ids = [c.pk for c in selectors.campaign_audience(campaign=campaign)]
    assert len(seen) == (max(ids) - min(ids)) // STEP + 1 >= 3
    assert seen == sorted(seen) and seen[0] == 0 and len(set(seen)) >= 3
    # Read-only: no delivery, no ledger event, the campaign untouched.
    assert not Delivery.objects.exists() and ConsentEvent.objects.count() == events
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    listed = marketer.get(f"/campaigns/{campaign.pk}/previews").json()
    assert [item["id"] for item in listed["items"]] == [job["id"]]


def test_an_audience_up_to_the_limit_is_previewed_inline_with_200(
    brand: Brand, purpose: Purpose, audience: list[Contact], settings: Any, marketer: Any
) -> None:
    campaign = make_campaign(brand, purpose)
    settings.PREVIEW_INLINE_MAX = 25

    response = marketer.post(f"/campaigns/{campaign.pk}/preview")

    assert response.status_code == 200, response.content
    expected = selectors.campaign_preview(campaign=campaign)
    assert response.json() == {
        "audience": 25,
        "would_send": expected.would_send,
        "would_deny": expected.would_deny,
    }
    assert not AudiencePreview.objects.exists()


def test_an_unknown_preview_or_one_of_another_campaign_is_404(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any, marketer: Any, drain: Drain
) -> None:
    campaign = make_campaign(brand, purpose)
    other = make_campaign(brand, purpose, name="Annen")
    job = _preview_job(drain.call(marketer.post, f"/campaigns/{campaign.pk}/preview"))

    response = marketer.get(f"/campaigns/{campaign.pk}/previews/999999")
    assert response.status_code == 404
    assert "preview 999999" in response.json()["detail"]
    assert marketer.get(f"/campaigns/{other.pk}/previews/{job['id']}").status_code == 404
    assert marketer.get(f"/campaigns/999999/previews/{job['id']}").status_code == 404
    assert marketer.get("/campaigns/999999/previews").status_code == 404
    assert marketer.get(f"/campaigns/{campaign.pk}/previews/0").status_code == 422


def test_a_failing_run_ends_failed_with_its_error_and_is_not_retried(
    brand: Brand,
    purpose: Purpose,
    audience: list[Contact],
    small_limit: Any,
    marketer: Any,
    drain: Drain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = make_campaign(brand, purpose)
    calls = {"n": 0}
    counts = gate.audience_counts

    def fails_on_the_third_range(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("statement went wrong")
        return counts(**kwargs)

    monkeypatch.setattr(previews, "audience_counts", fails_on_the_third_range)
    job = _preview_job(drain.call(marketer.post, f"/campaigns/{campaign.pk}/preview"))
    drain()

    assert drain.retried == 0 and not drain.dead
    failed = marketer.get(f"/campaigns/{campaign.pk}/previews/{job['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: statement went wrong"
    assert failed["finished_at"] and 0 < failed["decided"] < failed["total"]
    # A redelivered message leaves a failed preview alone; the marketer asks for a new one.
    tasks.run_audience_preview.fn(job["id"])
    assert AudiencePreview.objects.get(pk=job["id"]).status == PreviewStatus.FAILED


def test_the_time_limit_ends_the_preview_failed(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    preview = AudiencePreview.objects.create(campaign=make_campaign(brand, purpose), total=25)

    def runs_out_of_time(*, preview_id: int) -> None:
        AudiencePreview.objects.filter(pk=preview_id).update(status=PreviewStatus.RUNNING)
        raise TimeLimitExceeded()

    monkeypatch.setattr(previews, "audience_preview_run", runs_out_of_time)
    tasks.run_audience_preview.fn(preview.pk)

    preview.refresh_from_db()
    assert preview.status == PreviewStatus.FAILED and "time limit" in preview.error


def test_a_done_preview_is_left_alone_and_a_running_one_restarts_from_zero(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any
) -> None:
    campaign = make_campaign(brand, purpose)
    expected = selectors.campaign_preview(campaign=campaign)
    # A worker died mid-run: the preview says running with half-made counts.
    preview = AudiencePreview.objects.create(
        campaign=campaign, total=25, status=PreviewStatus.RUNNING, runs=1, decided=7, counts={"consent": 7}
    )

    done = previews.audience_preview_run(preview_id=preview.pk)

    assert done is not None and done.status == PreviewStatus.DONE and done.runs == 2
    assert selectors.preview_of(done.counts) == expected
    finished_at = done.finished_at
    again = previews.audience_preview_run(preview_id=preview.pk)
    assert again is not None and (again.runs, again.finished_at) == (2, finished_at)
    assert previews.audience_preview_run(preview_id=999999) is None


def test_a_replaced_run_stops_at_its_next_save(
    brand: Brand,
    purpose: Purpose,
    audience: list[Contact],
    small_limit: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = make_campaign(brand, purpose)
    preview = AudiencePreview.objects.create(campaign=campaign, total=25)
    counts = gate.audience_counts

    def replaced_after_the_first_range(**kwargs: Any) -> Any:
        # A second message for the same preview started meanwhile (the broker redelivered it).
        AudiencePreview.objects.filter(pk=preview.pk).update(runs=5, decided=0, counts={})
        return counts(**kwargs)

    monkeypatch.setattr(previews, "audience_counts", replaced_after_the_first_range)
    left = previews.audience_preview_run(preview_id=preview.pk)

    assert left is not None and left.status == PreviewStatus.RUNNING
    assert (left.runs, left.decided, left.counts) == (5, 0, {})  # the newer run's, untouched


def test_the_admin_action_starts_a_job_and_the_campaign_page_shows_it(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any, admin_client: Any, drain: Drain
) -> None:
    campaign = make_campaign(brand, purpose)
    expected = selectors.campaign_preview(campaign=campaign)

    response = drain.call(
        admin_client.post,
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "preview", "_selected_action": [campaign.pk]},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [
        f"{campaign.name}: the preview of 25 recipients runs in the background; "
        "its progress is shown on the campaign's page"
    ]
    preview = AudiencePreview.objects.get()
    assert preview.requested_by == "admin:admin" and preview.status == PreviewStatus.QUEUED
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "Latest preview" in page and "Queued (0 / 25 decided)" in page

    drain()

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert "Done (25 / 25 decided, finished " in page
    assert f"would send {expected.would_send}" in page
    for reason, n in expected.would_deny.items():
        assert f"{reason}: {n}" in page
    changelist = admin_client.get(reverse("admin:campaigns_audiencepreview_changelist"))
    assert changelist.status_code == 200 and "25 / 25" in changelist.content.decode()
    assert changelist.context["has_add_permission"] is False
    detail = admin_client.get(reverse("admin:campaigns_audiencepreview_change", args=[preview.pk]))
    assert detail.status_code == 200 and detail.context["has_change_permission"] is False


def test_a_small_audience_is_still_previewed_inline_in_the_admin(
    brand: Brand, purpose: Purpose, audience: list[Contact], admin_client: Any
) -> None:
    campaign = make_campaign(brand, purpose)
    response = admin_client.post(
        reverse("admin:campaigns_campaign_changelist"),
        {"action": "preview", "_selected_action": [campaign.pk]},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith(f"{campaign.name}: audience 25, would send ")
    assert not AudiencePreview.objects.exists()


def test_roles_that_may_not_preview_get_403(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any, api: Any, drain: Drain
) -> None:
    campaign = make_campaign(brand, purpose)
    job = _preview_job(drain.call(api("marketer").post, f"/campaigns/{campaign.pk}/preview"))
    staff = api("staff")

    assert staff.post(f"/campaigns/{campaign.pk}/preview").status_code == 403
    assert staff.get(f"/campaigns/{campaign.pk}/previews").status_code == 403
    assert staff.get(f"/campaigns/{campaign.pk}/previews/{job['id']}").status_code == 403
    assert api(None).get(f"/campaigns/{campaign.pk}/previews").status_code == 401
    assert AudiencePreview.objects.count() == 1
    for role in ("dpo", "system"):
        assert api(role).get(f"/campaigns/{campaign.pk}/previews/{job['id']}").status_code == 200


def test_the_openapi_document_names_both_preview_answers(api: Any) -> None:
    schema = api().client.get("/api/v1/openapi.json").json()
    answers = schema["paths"]["/api/v1/campaigns/{campaign_id}/preview"]["post"]["responses"]
    assert {"200", "202"} <= set(answers)


# --- a preview whose job the broker lost ------------------------------------------------------


def _age(preview: AudiencePreview, seconds: int) -> None:
    """Make the preview look untouched for ``seconds`` (and requested that long ago)."""
    past = timezone.now() - dt.timedelta(seconds=seconds)
    touched = past if preview.status == PreviewStatus.RUNNING else None
    AudiencePreview.objects.filter(pk=preview.pk).update(created_at=past, touched_at=touched)


def test_a_queued_preview_whose_message_was_lost_is_sent_again_by_the_tick_and_finishes(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any, drain: Drain
) -> None:
    campaign = make_campaign(brand, purpose)
    # Created, but its message never reached the broker (Redis lost it): nothing is queued.
    preview = AudiencePreview.objects.create(campaign=campaign, total=25)
    assert drain.pending() == 0
    # Fresh: the tick leaves it alone.
    assert drain.call(previews.audience_previews_sweep) == {"resent": 0, "failed": 0}
    assert drain.pending() == 0

    _age(preview, small_limit.PREVIEW_SWEEP_AFTER_SECONDS + 5)
    assert drain.call(tasks.campaigns_tick.fn) is None
    assert drain.pending() == 1
    # Sent once: the next tick, a minute later, does not send it again.
    assert drain.call(previews.audience_previews_sweep) == {"resent": 0, "failed": 0}
    drain()

    done = AudiencePreview.objects.get(pk=preview.pk)
    assert done.status == PreviewStatus.DONE and done.runs == 1
    assert selectors.preview_of(done.counts) == selectors.campaign_preview(campaign=campaign)


def test_a_running_preview_that_stopped_saving_is_restarted_from_zero(
    brand: Brand, purpose: Purpose, audience: list[Contact], small_limit: Any, drain: Drain
) -> None:
    campaign = make_campaign(brand, purpose)
    # Its worker died with the message: running, half counted, untouched since.
    preview = AudiencePreview.objects.create(
        campaign=campaign, total=25, status=PreviewStatus.RUNNING, runs=1, decided=8, counts={"consent": 8}
    )
    _age(preview, small_limit.PREVIEW_SWEEP_AFTER_SECONDS + 5)
    assert drain.call(previews.audience_previews_sweep) == {"resent": 1, "failed": 0}
    drain()

    done = AudiencePreview.objects.get(pk=preview.pk)
    assert done.status == PreviewStatus.DONE and done.runs == 2
    assert selectors.preview_of(done.counts) == selectors.campaign_preview(campaign=campaign)


def test_a_preview_lost_again_and_again_ends_failed_and_says_so(
    brand: Brand, purpose: Purpose, small_limit: Any, drain: Drain
) -> None:
    preview = AudiencePreview.objects.create(
        campaign=make_campaign(brand, purpose),
        total=25,
        status=PreviewStatus.RUNNING,
        runs=previews.PREVIEW_MAX_RUNS,
    )
    _age(preview, small_limit.PREVIEW_SWEEP_AFTER_SECONDS + 5)
    assert drain.call(previews.audience_previews_sweep) == {"resent": 0, "failed": 1}
    assert drain.pending() == 0
    failed = AudiencePreview.objects.get(pk=preview.pk)
    assert failed.status == PreviewStatus.FAILED and failed.finished_at is not None
    assert f"lost {previews.PREVIEW_MAX_RUNS} times" in failed.error


def test_a_running_preview_that_saves_progress_is_not_swept(
    brand: Brand,
    purpose: Purpose,
    audience: list[Contact],
    small_limit: Any,
    drain: Drain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    campaign = make_campaign(brand, purpose)
    preview = AudiencePreview.objects.create(campaign=campaign, total=25)
    _age(preview, small_limit.PREVIEW_SWEEP_AFTER_SECONDS + 5)  # requested long ago
    counts = gate.audience_counts
    swept: list[dict[str, int]] = []

    def sweep_between_ranges(**kwargs: Any) -> Any:
        # The tick runs while this run is deciding: its last save is recent, so it is left alone.
        swept.append(previews.audience_previews_sweep())
        return counts(**kwargs)

    monkeypatch.setattr(previews, "audience_counts", sweep_between_ranges)
    done = previews.audience_preview_run(preview_id=preview.pk)
    assert done is not None and done.status == PreviewStatus.DONE and done.runs == 1
    assert swept and all(result == {"resent": 0, "failed": 0} for result in swept)
    assert drain.pending() == 0
