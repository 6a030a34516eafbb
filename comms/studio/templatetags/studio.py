"""Filters that show the studio's codes as words."""

from django import template

from comms.studio import labels

register = template.Library()


@register.filter
def status(code: str) -> str:
    return labels.status_label(code)


@register.filter
def delivery_status(code: str) -> str:
    return labels.delivery_status_label(code)


@register.filter
def channel(code: str) -> str:
    return labels.channel_label(code)


@register.filter
def reason(code: str) -> str:
    return labels.reason_label(code)
