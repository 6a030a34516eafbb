"""Campaign previews that never hold a web request: an audience of up to
``COMMS_PREVIEW_INLINE_MAX`` contacts is decided inline (one statement, well under a second);
a larger one becomes an ``AudiencePreview`` job that the ``run_audience_preview`` actor decides
``COMMS_PREVIEW_STEP_IDS`` contact ids at a time, saving its counts after each range, so the
admin and the API show its progress. A preview writes nothing but its own row and sends nothing.

Retries: a failed run is recorded as ``failed`` with its error and not retried (the marketer
asks for a new preview, which is read-only and starts from zero anyway); only when even the
failure cannot be recorded (the database is gone) does the error propagate, so the actor's
retry finds the preview still ``running`` and restarts it.

Lost messages: the scheduler's minute tick (``audience_previews_sweep``) sends the message of a
``queued`` or ``running`` preview again when no run has saved progress for
``COMMS_PREVIEW_SWEEP_AFTER_SECONDS`` (the broker lost it, or its worker died with it); after
``PREVIEW_MAX_RUNS`` runs the preview ends ``failed`` instead, saying so.

Idempotency: a ``done`` or ``failed`` preview is left alone. A ``queued`` or ``running`` one is
(re)started from zero (a message redelivered after a worker died finds it ``running``); each run
holds a number (``runs``) and writes only while it is the latest, so the run it replaced stops at
its next save and the counts are never added twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from comms.campaigns.models import AudiencePreview, Campaign, PreviewStatus
from comms.campaigns.selectors import Preview, campaign_audience, campaign_preview
from comms.core import jobs
from comms.core.logs import redact
from comms.suppression.gate import audience_counts

logger = logging.getLogger(__name__)
ERROR_MAX = 500
PREVIEW_MAX_RUNS = 5


def campaign_preview_request(*, campaign: Campaign, requested_by: str) -> Preview | AudiencePreview:
    """The preview itself when the audience is small enough to decide inline, otherwise a
    queued job (its actor is enqueued when the transaction commits)."""
    total = campaign_audience(campaign=campaign).count()
    if total <= settings.PREVIEW_INLINE_MAX:
        return campaign_preview(campaign=campaign)
    with transaction.atomic():
        preview = AudiencePreview.objects.create(
            campaign=campaign, total=total, requested_by=requested_by[:100]
        )
        transaction.on_commit(lambda: jobs.enqueue("run_audience_preview", preview.pk))
    return preview


@dataclass(frozen=True)
class _Run:
    preview_id: int
    number: int

    def save(self, **fields: object) -> bool:
        """Write ``fields`` if this is still the preview's latest run; False if it was replaced."""
        rows = AudiencePreview.objects.filter(
            pk=self.preview_id, runs=self.number, status=PreviewStatus.RUNNING
        ).update(**fields, touched_at=timezone.now())
        return rows == 1


def _claim(preview_id: int) -> tuple[AudiencePreview | None, _Run | None]:
    with transaction.atomic():
        preview = (
            AudiencePreview.objects.select_for_update(of=("self",))
            .select_related("campaign__purpose")
            .filter(pk=preview_id)
            .first()
        )
        if preview is None or preview.status in (PreviewStatus.DONE, PreviewStatus.FAILED):
            return preview, None
        preview.status = PreviewStatus.RUNNING
        preview.runs += 1
        preview.total = campaign_audience(campaign=preview.campaign).count()
        preview.decided = 0
        preview.counts = {}
        preview.error = ""
        preview.started_at = preview.touched_at = timezone.now()
        preview.finished_at = None
        preview.save()
    return preview, _Run(preview_id=preview.pk, number=preview.runs)


def audience_preview_run(*, preview_id: int) -> AudiencePreview | None:
    """Decide the preview's audience range by range of contact ids, saving the counts after
    each range; returns the preview as this run left it (as it was if done or failed; None if
    it is gone with its campaign)."""
    preview, run = _claim(preview_id)
    if preview is None or run is None:
        return preview
    try:
        _walk(preview, run)
    except Exception as exc:
        error = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:ERROR_MAX]
        try:
            run.save(status=PreviewStatus.FAILED, error=error, finished_at=timezone.now())
        except DatabaseError:
            raise exc from None  # not even the failure was recorded: the retry restarts it
        logger.warning("audience preview %s failed: %s", preview_id, error)
    preview.refresh_from_db()
    return preview


def _walk(preview: AudiencePreview, run: _Run) -> None:
    campaign = preview.campaign
    contacts = campaign_audience(campaign=campaign)
    bounds = contacts.aggregate(first=Min("pk"), last=Max("pk"))
    counts: Counter[str] = Counter()
    step = settings.PREVIEW_STEP_IDS
    low = bounds["first"]
    while low is not None and low <= bounds["last"]:
        part = audience_counts(
            contacts=contacts.filter(pk__gte=low, pk__lt=low + step),
            channel=campaign.channel,
            purpose=campaign.purpose,
        )
        counts.update(part)
        if not run.save(decided=sum(counts.values()), counts=dict(counts)):
            return  # a newer run took over
        low += step
    decided = sum(counts.values())
    run.save(
        status=PreviewStatus.DONE,
        decided=decided,
        total=decided,
        counts=dict(counts.most_common()),
        finished_at=timezone.now(),
    )


def audience_preview_fail(*, preview_id: int, error: str) -> None:
    """Record that the running preview stopped for good (the actor's time limit)."""
    AudiencePreview.objects.filter(pk=preview_id, status=PreviewStatus.RUNNING).update(
        status=PreviewStatus.FAILED, error=error[:ERROR_MAX], finished_at=timezone.now()
    )


def audience_previews_sweep() -> dict[str, int]:
    """Once a minute (the campaigns tick): send again the message of every queued or running
    preview that no run has touched for ``COMMS_PREVIEW_SWEEP_AFTER_SECONDS`` (its message was
    lost), or end it ``failed`` once it has had ``PREVIEW_MAX_RUNS`` runs. A run the sweep wrongly
    took for lost (one range slower than the whole cutoff) is replaced by the new one, which
    starts from zero; counts are never added twice (see the module)."""
    now = timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.PREVIEW_SWEEP_AFTER_SECONDS)
    stale = AudiencePreview.objects.filter(status__in=(PreviewStatus.QUEUED, PreviewStatus.RUNNING)).filter(
        Q(touched_at__lt=cutoff) | Q(touched_at__isnull=True, created_at__lt=cutoff)
    )
    resent = failed = 0
    for preview_id in stale.values_list("id", flat=True):
        with transaction.atomic():
            preview = AudiencePreview.objects.select_for_update().filter(pk=preview_id).first()
            if preview is None or preview.status not in (PreviewStatus.QUEUED, PreviewStatus.RUNNING):
                continue
            if preview.runs >= PREVIEW_MAX_RUNS:
                preview.status = PreviewStatus.FAILED
                preview.error = f"its job was lost {preview.runs} times; ask for a new preview"
                preview.finished_at = now
                preview.save(update_fields=["status", "error", "finished_at"])
                failed += 1
                logger.warning("audience preview %s lost %s times: failed", preview_id, preview.runs)
                continue
            preview.touched_at = now
            preview.save(update_fields=["touched_at"])
            transaction.on_commit(functools.partial(jobs.enqueue, "run_audience_preview", preview_id))
            resent += 1
            logger.info(
                "audience preview %s (%s) untouched since %s: its job is sent again",
                preview_id,
                preview.status,
                cutoff,
            )
    return {"resent": resent, "failed": failed}
