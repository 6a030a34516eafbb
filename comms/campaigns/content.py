"""Message content: per-contact fields, SMS length in segments, and the opt-out every marketing
message carries."""

from __future__ import annotations

import re
from dataclasses import dataclass

from comms.contacts.models import Contact
from comms.errors import InvalidInput

FIELDS = ("first_name", "last_name", "brand", "centre")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# A name longer than this is rare; length checks assume it so the marketer's limit holds.
_SAMPLE = "X" * 20

# GSM 03.38 basic set (æøå included) and the extension set, which costs two characters.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "gsm" or "ucs2"
    units: int
    segments: int


def sms_length(text: str) -> SmsLength:
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "gsm"
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)
        single, multi, encoding = 70, 67, "ucs2"
    segments = 1 if units <= single else -(-units // multi)
    return SmsLength(encoding, units, segments)


def check_template(text: str, *, field: str) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name not in FIELDS:
            raise InvalidInput(
                field, f"unknown field {{{name}}}; use {', '.join('{' + f + '}' for f in FIELDS)}"
            )


def render(text: str, contact: Contact) -> str:
    values = {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "brand": contact.brand.name,
        "centre": contact.home_centre.name if contact.home_centre else "",
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def render_sample(text: str) -> str:
    return _PLACEHOLDER.sub(lambda m: _SAMPLE, text)


def sms_opt_out(sender: str, short_link: str | None) -> str:
    """The opt-out line: STOPP to a numeric sender, or a short link for an alphanumeric one."""
    if sender.isdigit():
        return f"Svar STOPP til {sender} for å melde deg av."
    return f"Avmeld: {short_link}" if short_link else "Avmeld: svar STOPP"
