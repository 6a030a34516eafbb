"""The studio's forms. They turn fields into the services' input; the services validate the
rules (purpose allows the channel, SMS length with the opt-out line, subject), and their
errors come back onto the field they name."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from comms.campaigns.followups.services import FollowUpRuleInput
from comms.campaigns.services import CampaignInput
from comms.contacts.models import Brand, Tag
from comms.errors import InvalidInput
from comms.studio.labels import KINDS
from comms.suppression.models import Purpose

AUDIENCE_FORM_FIELDS = (
    "kinds",
    "centres",
    "tags",
    "last_visit_before",
    "last_visit_after",
    "age_min",
    "age_max",
)


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self) -> None:
        super().__init__(format="%Y-%m-%d")


class CampaignForm(forms.Form):
    name = forms.CharField(label=_("Campaign name"), max_length=200)
    purpose = forms.ChoiceField(label=_("Purpose"))
    kinds = forms.MultipleChoiceField(
        label=_("Who"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=[(key, label) for key, label in KINDS.items()],
        help_text=_("None ticked: everyone."),
    )
    centres = forms.MultipleChoiceField(
        label=_("Centres"), required=False, widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: all.")
    )
    tags = forms.MultipleChoiceField(
        label=_("Tags"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("A contact with any of the ticked tags matches."),
    )
    last_visit_after = forms.DateField(label=_("Last visit on or after"), required=False, widget=DateInput())
    last_visit_before = forms.DateField(label=_("Last visit before"), required=False, widget=DateInput())
    age_min = forms.IntegerField(label=_("Age from"), required=False, min_value=0, max_value=130)
    age_max = forms.IntegerField(label=_("Age to"), required=False, min_value=0, max_value=130)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    html = forms.CharField(
        label=_("E-mail (HTML)"), required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 10})
    )
    text = forms.CharField(
        label=_("Text"), max_length=20000, widget=forms.Textarea(attrs={"rows": 6}), required=False
    )
    sms_max_segments = forms.IntegerField(
        label=_("Longest SMS, in segments"), min_value=1, max_value=10, initial=2, required=False
    )

    def __init__(self, *args: Any, brand: Brand, channel: str, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.brand, self.channel = brand, channel
        purposes = [p for p in Purpose.objects.filter(brand=brand).order_by("name") if p.allows_channel(channel)]
        self._choices("purpose", [("", _("Choose a purpose")), *((p.key, p.name) for p in purposes)])
        self._choices("centres", [(c.key, c.name) for c in brand.centres.order_by("name")])
        self._choices("tags", [(t.name, t.name) for t in Tag.objects.order_by("name")])
        self.fields["text"].label = _("SMS text") if channel == "sms" else _("Plain-text part")
        if channel == "sms":
            for name in ("subject", "html"):
                del self.fields[name]
        else:
            del self.fields["sms_max_segments"]

    def _choices(self, name: str, choices: list[tuple[str, Any]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        low, high = data.get("age_min"), data.get("age_max")
        if low is not None and high is not None and low > high:
            self.add_error("age_max", _("Must be at least the lower age."))
        after, before = data.get("last_visit_after"), data.get("last_visit_before")
        if after and before and after >= before:
            self.add_error("last_visit_before", _("Must be after the other date."))
        return data

    def audience(self) -> dict[str, Any]:
        data, audience = self.cleaned_data, {}
        for name in ("kinds", "centres", "tags"):
            if data.get(name):
                audience[name] = list(data[name])
        for name in ("last_visit_before", "last_visit_after"):
            if data.get(name):
                audience[name] = data[name].isoformat()
        for name in ("age_min", "age_max"):
            if data.get(name) is not None:
                audience[name] = data[name]
        return audience

    def to_input(self) -> CampaignInput:
        data = self.cleaned_data
        return CampaignInput(
            name=data["name"],
            channel=self.channel,
            purpose=data["purpose"],
            audience=self.audience(),
            subject=data.get("subject", ""),
            html=data.get("html", ""),
            text=data.get("text", ""),
            sms_max_segments=data.get("sms_max_segments") or 2,
        )

    def add_service_error(self, error: InvalidInput) -> None:
        """Put a service's error on the field it names (``audience.kinds`` → ``kinds``)."""
        name = error.field.removeprefix("audience.")
        self.add_error(name if name in self.fields else None, error.message)

    @classmethod
    def initial_for(cls, campaign: Any) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": campaign.name,
            "purpose": campaign.purpose.key,
            "subject": campaign.subject,
            "html": campaign.html,
            "text": campaign.text,
            "sms_max_segments": campaign.sms_max_segments,
        }
        for name in AUDIENCE_FORM_FIELDS:
            if name in campaign.audience:
                initial[name] = campaign.audience[name]
        return initial


class ScheduleForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    send_at = forms.DateTimeField(
        label=_("Send at (Norwegian time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def clean_send_at(self) -> dt.datetime:
        value: dt.datetime = self.cleaned_data["send_at"]
        if timezone.is_naive(value):
            value = timezone.make_aware(value, timezone.get_current_timezone())
        if value <= timezone.now():
            raise forms.ValidationError(_("The time has passed; choose a time in the future."))
        return value


class TestSendForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    recipients = forms.CharField(
        label=_("Send a test to"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Staff addresses only, one per line (at most 5)."),
    )

    def clean_recipients(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["recipients"].replace(",", "\n").splitlines()]
        recipients = list(dict.fromkeys(line for line in lines if line))
        if not recipients:
            raise forms.ValidationError(_("Give at least one address."))
        if len(recipients) > settings.STUDIO_TEST_SEND_MAX:
            raise forms.ValidationError(
                _("At most %(n)s addresses at a time.") % {"n": settings.STUDIO_TEST_SEND_MAX}
            )
        return recipients


TRIGGERS = {
    "trial_visit": _("After a trial visit (guests and leads)"),
    "class_booking": _("After a class booking"),
    "no_visit": _("A member without a visit for some days"),
}


class FollowUpRuleForm(forms.Form):
    """A follow-up rule: the trigger and its timing, and the message (the rule's campaign)."""

    name = forms.CharField(label=_("Rule name"), max_length=150)
    trigger = forms.ChoiceField(label=_("Trigger"), choices=list(TRIGGERS.items()))
    delay_hours = forms.IntegerField(
        label=_("Hours after the trigger"), min_value=0, help_text=_("24 = the day after.")
    )
    inactive_days = forms.IntegerField(
        label=_("Days without a visit"), min_value=1, required=False, help_text=_("Only for members without a visit.")
    )
    purpose = forms.ChoiceField(label=_("Purpose"))
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    html = forms.CharField(
        label=_("E-mail (HTML)"), required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 6})
    )
    text = forms.CharField(label=_("Text"), max_length=20000, widget=forms.Textarea(attrs={"rows": 5}), required=False)
    sms_max_segments = forms.IntegerField(
        label=_("Longest SMS, in segments"), min_value=1, max_value=10, initial=2, required=False
    )
    active = forms.BooleanField(label=_("Active: plan follow-ups for new visits"), required=False, initial=True)

    def __init__(self, *args: Any, brand: Brand, channel: str, existing: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.brand, self.channel = brand, channel
        purposes = [p for p in Purpose.objects.filter(brand=brand).order_by("name") if p.allows_channel(channel)]
        field = self.fields["purpose"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Choose a purpose")), *((p.key, p.name) for p in purposes)]
        self.fields["text"].label = _("SMS text") if channel == "sms" else _("Plain-text part")
        if existing:
            # A rule's trigger decides what its follow-ups already are: it cannot change.
            self.fields["trigger"].disabled = True
        if channel == "sms":
            for name in ("subject", "html"):
                del self.fields[name]
        else:
            del self.fields["sms_max_segments"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("trigger") != "no_visit":
            data["inactive_days"] = None
        elif data.get("inactive_days") is None and "inactive_days" not in self.errors:
            self.add_error("inactive_days", _("Give the days without a visit."))
        return data

    def to_input(self) -> FollowUpRuleInput:
        data = self.cleaned_data
        return FollowUpRuleInput(
            name=data["name"],
            trigger=data["trigger"],
            delay_hours=data["delay_hours"],
            inactive_days=data.get("inactive_days"),
            channel=self.channel,
            purpose=data["purpose"],
            subject=data.get("subject", ""),
            html=data.get("html", ""),
            text=data.get("text", ""),
            sms_max_segments=data.get("sms_max_segments") or 2,
            active=bool(data.get("active")),
        )

    def add_service_error(self, error: InvalidInput) -> None:
        self.add_error(error.field if error.field in self.fields else None, error.message)

    @classmethod
    def initial_for(cls, rule: Any) -> dict[str, Any]:
        campaign = rule.campaign
        return {
            "name": rule.name,
            "trigger": rule.trigger,
            "delay_hours": rule.delay_hours,
            "inactive_days": rule.inactive_days,
            "purpose": campaign.purpose.key,
            "subject": campaign.subject,
            "html": campaign.html,
            "text": campaign.text,
            "sms_max_segments": campaign.sms_max_segments,
            "active": campaign.status == "sending",
        }
