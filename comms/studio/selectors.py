"""Reads for the studio: campaign rows with their counts, daily series for the charts, denial
reasons, a campaign's report and the opt-outs that followed it. Set-based: a few GROUP BY
statements per page, never a loop over deliveries."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from comms.campaigns.followups.handoff import PLANNED
from comms.campaigns.models import Campaign, Delivery, DeliveryStatus, FollowUp, FollowUpRule
from comms.contacts.models import Brand
from comms.suppression.models import Action, ConsentEvent, Source

# A person's own opt-out: through a message's link, the preference centre or an SMS keyword.
OPT_OUT_SOURCES = (
    Source.UNSUBSCRIBE_LINK,
    Source.ONE_CLICK,
    Source.PREFERENCE_CENTRE,
    Source.SMS_KEYWORD,
    Source.MAILCHIMP_WEBHOOK,
)
OPT_OUT_ACTIONS = (Action.WITHDRAW, Action.OBJECT)
# An opt-out counts for a campaign when the person opted out within this time after its message.
OPT_OUT_ATTRIBUTION = dt.timedelta(days=7)
SENT_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED)


def studio_campaigns(*, brands: QuerySet[Brand], include_rules: bool = False) -> QuerySet[Campaign]:
    """The brands' campaigns; without the campaigns that carry follow-up rules unless asked."""
    campaigns = Campaign.objects.filter(brand__in=brands).select_related("brand", "purpose").order_by("-id")
    return campaigns if include_rules else campaigns.filter(followup_rule__isnull=True)


@dataclass
class CampaignRow:
    campaign: Campaign
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    denied: int = 0
    deferred: int = 0
    queued: int = 0
    opt_outs: int = 0


def campaign_rows(*, campaigns: Iterable[Campaign]) -> list[CampaignRow]:
    rows = {c.pk: CampaignRow(campaign=c) for c in campaigns}
    if not rows:
        return []
    counts = (
        Delivery.objects.filter(campaign_id__in=rows).values("campaign_id", "status").annotate(n=Count("id"))
    )
    for item in counts:
        row, status, n = rows[item["campaign_id"]], item["status"], item["n"]
        if status in SENT_STATUSES:
            row.sent += n
        if status == DeliveryStatus.DELIVERED:
            row.delivered += n
        elif status in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED):
            row.failed += n
        elif status == DeliveryStatus.DENIED:
            row.denied += n
        elif status == DeliveryStatus.DEFERRED:
            row.deferred += n
        elif status == DeliveryStatus.QUEUED:
            row.queued += n
    for campaign_id, n in opt_outs_by_campaign(campaign_ids=list(rows)).items():
        rows[campaign_id].opt_outs = n
    return list(rows.values())


def _opt_out_events() -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.filter(action__in=OPT_OUT_ACTIONS, source__in=OPT_OUT_SOURCES)


def opt_outs_by_campaign(*, campaign_ids: list[int]) -> dict[int, int]:
    """People who opted out of the campaign's channel (or of everything) within
    ``OPT_OUT_ATTRIBUTION`` after its message reached the provider; each person once."""
    if not campaign_ids:
        return {}
    deliveries = Delivery.objects.filter(campaign_id__in=campaign_ids, sent_at__isnull=False)
    rows = (
        _opt_out_events()
        .filter(
            Q(contact_id__in=deliveries.values("contact_id")),
        )
        .values_list("contact_id", "channel", "occurred_at")
    )
    by_contact: dict[int, list[tuple[str, dt.datetime]]] = defaultdict(list)
    for contact_id, channel, occurred_at in rows:
        by_contact[contact_id].append((channel, occurred_at))
    if not by_contact:
        return {}
    result: Counter[int] = Counter()
    for campaign_id, contact_id, channel, sent_at in deliveries.filter(
        contact_id__in=list(by_contact)
    ).values_list("campaign_id", "contact_id", "channel", "sent_at"):
        if sent_at is not None and any(
            (event_channel in ("", channel)) and sent_at <= occurred_at <= sent_at + OPT_OUT_ATTRIBUTION
            for event_channel, occurred_at in by_contact[contact_id]
        ):
            result[campaign_id] += 1
    return dict(result)


@dataclass
class Series:
    """Messages and opt-outs per day for one brand and channel."""

    brand: Brand
    channel: str
    days: list[dt.date]
    messages: list[int]
    opt_outs: list[int]

    @property
    def total_messages(self) -> int:
        return sum(self.messages)

    @property
    def total_opt_outs(self) -> int:
        return sum(self.opt_outs)


def daily_series(*, brands: QuerySet[Brand], days: int = 90, today: dt.date | None = None) -> list[Series]:
    """Per brand and channel: messages handed to the provider and opt-outs, per day (Europe/Oslo)
    over the last ``days`` days."""
    today = today or timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), timezone.get_current_timezone())
    sent = (
        Delivery.objects.filter(campaign__brand__in=brands, sent_at__gte=start)
        .annotate(day=TruncDate("sent_at"))
        .values("campaign__brand_id", "channel", "day")
        .annotate(n=Count("id"))
    )
    opted = (
        _opt_out_events()
        .filter(Q(brand__in=brands) | Q(brand__isnull=True, contact__brand__in=brands), occurred_at__gte=start)
        .annotate(day=TruncDate("occurred_at"))
        .values("brand_id", "contact__brand_id", "channel", "day")
        .annotate(n=Count("id"))
    )
    axis = [first + dt.timedelta(days=i) for i in range(days)]
    index = {day: i for i, day in enumerate(axis)}
    table: dict[tuple[int, str], tuple[list[int], list[int]]] = {}

    def slot(brand_id: int, channel: str) -> tuple[list[int], list[int]]:
        return table.setdefault((brand_id, channel), ([0] * days, [0] * days))

    for row in sent:
        if row["day"] in index:
            slot(row["campaign__brand_id"], row["channel"])[0][index[row["day"]]] += row["n"]
    for event in opted:
        brand_id = event["brand_id"] or event["contact__brand_id"]
        if event["day"] not in index or brand_id is None:
            continue
        # An opt-out of every channel counts on both charts of the brand.
        for channel in [event["channel"]] if event["channel"] else ["email", "sms"]:
            slot(brand_id, channel)[1][index[event["day"]]] += event["n"]
    by_id = {brand.pk: brand for brand in brands}
    return [
        Series(brand=by_id[brand_id], channel=channel, days=axis, messages=values[0], opt_outs=values[1])
        for (brand_id, channel), values in sorted(table.items(), key=lambda kv: (by_id[kv[0][0]].key, kv[0][1]))
        if brand_id in by_id
    ]


def top_denials(*, brands: QuerySet[Brand], days: int = 90, limit: int = 8) -> list[tuple[str, int]]:
    since = timezone.now() - dt.timedelta(days=days)
    rows = (
        Delivery.objects.filter(
            campaign__brand__in=brands, status=DeliveryStatus.DENIED, decided_at__gte=since
        )
        .values("reason")
        .annotate(n=Count("id"))
        .order_by("-n", "reason")[:limit]
    )
    return [(row["reason"], row["n"]) for row in rows]


@dataclass
class Report:
    campaign: Campaign
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    denied: list[tuple[str, int]] = field(default_factory=list)
    deferred: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[str, int]] = field(default_factory=list)
    opt_outs: int = 0
    test_sends: int = 0
    timeline: list[tuple[dt.datetime, int]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return self.by_status.get(status, 0)

    @property
    def handed_over(self) -> int:
        return sum(self.by_status.get(s, 0) for s in SENT_STATUSES)

    @property
    def failed_total(self) -> int:
        return self.count(DeliveryStatus.FAILED) + self.count(DeliveryStatus.BOUNCED)

    @property
    def done(self) -> int:
        return self.total - self.count(DeliveryStatus.QUEUED)

    @property
    def progress_percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def campaign_report(*, campaign: Campaign) -> Report:
    report = Report(campaign=campaign)
    per_reason: dict[str, Counter[str]] = defaultdict(Counter)
    rows = Delivery.objects.filter(campaign=campaign).values("status", "reason", "last_error").annotate(
        n=Count("id")
    )
    for row in rows:
        status, n = row["status"], row["n"]
        report.total += n
        report.by_status[status] = report.by_status.get(status, 0) + n
        if status in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED):
            per_reason[status][row["reason"] or row["last_error"] or "-"] += n
        else:
            per_reason[status][row["reason"] or "-"] += n
    report.denied = per_reason[DeliveryStatus.DENIED].most_common()
    report.deferred = per_reason[DeliveryStatus.DEFERRED].most_common()
    report.failed = (per_reason[DeliveryStatus.FAILED] + per_reason[DeliveryStatus.BOUNCED]).most_common()
    report.opt_outs = opts if (opts := opt_outs_by_campaign(campaign_ids=[campaign.pk]).get(campaign.pk)) else 0
    report.test_sends = campaign.test_sends.count()
    per_hour = {
        row["hour"]: row["n"]
        for row in Delivery.objects.filter(campaign=campaign, sent_at__isnull=False)
        .annotate(hour=TruncHour("sent_at"))
        .values("hour")
        .annotate(n=Count("id"))
    }
    if per_hour:
        # Every hour from the first to the last, the quiet ones too (at most a week of them).
        hour, last = min(per_hour), max(per_hour)
        while hour <= last and len(report.timeline) < 24 * 7:
            report.timeline.append((hour, per_hour.get(hour, 0)))
            hour += dt.timedelta(hours=1)
    return report


CSV_FIELDS = (
    "delivery_id",
    "contact_id",
    "channel",
    "status",
    "reason",
    "provider_id",
    "decided_at",
    "sent_at",
    "delivered_at",
)


def deliveries_csv_rows(*, campaign: Campaign) -> Iterator[list[Any]]:
    """Ids, statuses and times of the campaign's deliveries; never an address or a name."""
    yield list(CSV_FIELDS)
    for row in (
        Delivery.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list(
            "id", "contact_id", "channel", "status", "reason", "provider_id", "decided_at", "sent_at",
            "delivered_at",
        )
        .iterator(chunk_size=2000)
    ):
        yield [value.isoformat() if isinstance(value, dt.datetime) else value for value in row]


def studio_followup_rules(*, brands: QuerySet[Brand]) -> QuerySet[FollowUpRule]:
    return (
        FollowUpRule.objects.filter(brand__in=brands)
        .select_related("brand", "campaign", "campaign__purpose")
        .order_by("brand__key", "id")
    )


@dataclass
class FollowUpWatch:
    rule: FollowUpRule
    report: Report
    planned: int
    upcoming: list[FollowUp]


def followup_watch(*, rule: FollowUpRule, upcoming: int = 20) -> FollowUpWatch:
    """What a rule has planned (and the next ones due), what went out and why not: its campaign's
    report, where a planned follow-up is a delivery deferred with the reason ``planned``."""
    report = campaign_report(campaign=rule.campaign)
    planned = dict(report.deferred).get(PLANNED, 0)
    next_due = list(
        FollowUp.objects.filter(rule=rule, delivery__status=DeliveryStatus.DEFERRED, delivery__reason=PLANNED)
        .select_related("delivery")
        .order_by("due_at", "id")[:upcoming]
    )
    return FollowUpWatch(rule=rule, report=report, planned=planned, upcoming=next_due)
