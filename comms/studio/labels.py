"""Words for the codes the gate, the send path and the campaigns store (the studio shows
words, never codes). Unknown codes fall back to the code itself."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

REASONS: dict[str, Promise] = {
    # the gate's denials
    "objection": _("objected to direct marketing"),
    "restricted": _("processing is restricted"),
    "withdrawn": _("withdrew their consent"),
    "minor_without_guardian": _("under the age of consent without a guardian's consent"),
    "soft_opt_in_not_applicable": _("soft opt-in does not apply"),
    "basis_not_permitted": _("the legal basis is not permitted for this purpose"),
    "stale_notice": _("consented to an outdated notice"),
    "consent_expired": _("the consent has expired"),
    "awaiting_confirmation": _("has not confirmed the sign-up yet"),
    "no_consent": _("has not consented"),
    "no_address": _("has no address for the channel"),
    "channel_not_allowed": _("the purpose does not allow this channel"),
    # suppressions of the address
    "suppressed:objection": _("reserved against marketing (objection)"),
    "suppressed:withdrawn": _("unsubscribed from all marketing"),
    "suppressed:sms_stop": _("replied STOPP"),
    "suppressed:complaint": _("reported a message as spam"),
    "suppressed:hard_bounce": _("the address bounced"),
    "suppressed:blocked_recipient": _("blocked by the operator"),
    "suppressed:erased": _("data erased at the person's request"),
    "suppressed:restricted": _("processing is restricted"),
    # deferrals and other outcomes
    "quiet_hours": _("outside the SMS send window"),
    "frequency_cap": _("frequency cap reached"),
    "planned": _("planned"),
    "campaign_cancelled": _("the campaign was cancelled"),
    "provider_unavailable": _("the provider was unavailable"),
    "converted": _("became a member"),
    "visited_again": _("visited again"),
    "not_a_member": _("is no longer a member"),
    "outside_window": _("outside the follow-up window"),
    "erased": _("data erased"),
    # allowed bases
    "consent": _("consent"),
    "soft_opt_in": _("soft opt-in"),
    "contract": _("contract"),
}

STATUSES: dict[str, Promise] = {
    "draft": _("Draft"),
    "scheduled": _("Scheduled"),
    "sending": _("Sending"),
    "sent": _("Sent"),
    "paused": _("Paused"),
    "cancelled": _("Cancelled"),
    "failed": _("Failed"),
}

DELIVERY_STATUSES: dict[str, Promise] = {
    "queued": _("Queued"),
    "denied": _("Denied by the gate"),
    "deferred": _("Deferred"),
    "sent": _("Handed to the provider"),
    "failed": _("Failed"),
    "delivered": _("Delivered"),
    "bounced": _("Bounced"),
    "cancelled": _("Cancelled"),
}

CHANNELS: dict[str, Promise] = {"email": _("E-mail"), "sms": _("SMS")}

KINDS: dict[str, Promise] = {"member": _("Members"), "guest": _("Trial guests"), "lead": _("Leads")}


def reason_label(code: str) -> str:
    if code in REASONS:
        return str(REASONS[code])
    if code.startswith("rejected:") or code.startswith("provider:"):
        return str(_("rejected by the provider: %(code)s") % {"code": code.split(":", 1)[1]})
    return code or "–"


def status_label(code: str) -> str:
    return str(STATUSES.get(code, code))


def delivery_status_label(code: str) -> str:
    return str(DELIVERY_STATUSES.get(code, code))


def channel_label(code: str) -> str:
    return str(CHANNELS.get(code, code))
