"""Demo data for the zero-configuration run: three brands, purposes, contacts and a ledger with
every kind of decision in it. Everything goes through the same services as real data."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from comms.campaigns.followups.services import FollowUpRuleInput, followup_rule_create
from comms.campaigns.services import CampaignInput, campaign_create
from comms.contacts import services as contacts
from comms.contacts.models import Brand, Centre, Contact
from comms.suppression import services as ledger
from comms.suppression.models import Source
from comms.suppression.services import Evidence, Principal

BRANDS = [
    ("fit24", "FIT24", "FIT24", "FIT24 <nyhetsbrev@fit24.example>", ["oslo-sentrum", "bergen", "trondheim"]),
    (
        "klinikk24",
        "Klinikk24",
        "Klinikk24",
        "Klinikk24 <post@klinikk24.example>",
        ["majorstuen", "stavanger"],
    ),
    ("k24-trening", "K24 Trening", "K24", "K24 Trening <hei@k24.example>", ["lillestrom", "drammen"]),
]
FIRST = [
    "Kari",
    "Ola",
    "Ingrid",
    "Lars",
    "Sofie",
    "Henrik",
    "Nora",
    "Magnus",
    "Emma",
    "Jonas",
    "Maja",
    "Sander",
]
LAST = ["Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Berg", "Haugen", "Bakke", "Lie"]
MOBILE_PREFIXES = ["40", "41", "46", "47", "48", "90", "91", "92", "93", "94", "95", "97", "98", "99"]


@dataclass
class SeedResult:
    created: bool
    contacts: int = 0
    events: int = 0


def _notice(brand: str, what: str) -> str:
    return (
        f"Ja takk, {brand} kan sende meg {what}. Jeg kan når som helst melde meg av via lenken i "
        f"hver e-post, ved å svare STOPP på SMS, eller i preferansesenteret."
    )


@transaction.atomic
def seed_demo(*, contacts_per_brand: int = 20, seed: int = 2026) -> SeedResult:
    if Brand.objects.filter(key="fit24").exists():
        return SeedResult(created=False)
    rng = random.Random(seed)
    staff = Principal(actor="staff", recorded_by="demo-seed")
    system = Principal(actor="system", recorded_by="demo-seed")
    result = SeedResult(created=True)
    now = timezone.now()
    for key, name, sender, email_from, centres in BRANDS:
        brand = Brand.objects.create(key=key, name=name, sms_sender=sender, email_from=email_from)
        for centre in centres:
            Centre.objects.create(brand=brand, key=centre, name=centre.replace("-", " ").title())
        newsletter = ledger.purpose_create(
            brand=brand,
            key=f"{key}-newsletter",
            name=f"{name} nyhetsbrev",
            channels=["email"],
            notice_text=_notice(name, "nyhetsbrev med tilbud og nyheter på e-post"),
        )
        dialogue = ledger.purpose_create(
            brand=brand,
            key="member-dialogue",
            name="Medlemsdialog",
            channels=["email", "sms"],
            notice_text=_notice(name, "tilbud og nyheter som medlem på e-post og SMS"),
            allows_soft_opt_in=True,
        )
        followup = ledger.purpose_create(
            brand=brand,
            key="trial-followup",
            name="Oppfølging etter prøvetime",
            channels=["sms", "email"],
            notice_text=_notice(name, "en oppfølging etter prøvetimen min på SMS eller e-post"),
        )
        _demo_followup_rules(brand, followup.key)
        for index in range(contacts_per_brand):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            kind = ["member", "member", "guest", "lead"][index % 4]
            born = dt.date(rng.randint(1950, 2006), rng.randint(1, 12), rng.randint(1, 28))
            data = contacts.ContactInput(
                brand=key,
                kind=kind,
                external_id=f"{key}-{index + 1:04d}",
                first_name=first,
                last_name=last,
                birth_date=born,
                email=f"{first}.{last}.{key}.{index}@example.no".lower(),
                mobile=rng.choice(MOBILE_PREFIXES) + f"{rng.randint(0, 999999):06d}",
                home_centre=rng.choice(centres),
                tags=["demo", kind],
                purchase_at=(now - dt.timedelta(days=rng.randint(10, 900))) if kind == "member" else None,
            )
            contact = contacts.contact_create(data=data)
            result.contacts += 1
            if kind == "guest":
                contacts.visit_record(
                    contact=contact,
                    kind="trial_session",
                    occurred_at=now - dt.timedelta(days=rng.randint(0, 20)),
                    centre=contact.home_centre.key if contact.home_centre else None,
                )
            result.events += _demo_ledger(rng, contact, newsletter, dialogue, followup, staff, system)
        # A child member with a guardian who consented for them.
        parent = Contact.objects.filter(brand=brand, kind="member").first()
        child = contacts.contact_create(
            data=contacts.ContactInput(
                brand=key,
                kind="member",
                external_id=f"{key}-child",
                first_name="Lille",
                last_name="Nordmann",
                birth_date=timezone.localdate() - dt.timedelta(days=365 * 11),
                email=f"lille.{key}@example.no",
                guardian_id=parent.pk if parent else None,
                purchase_at=now,
            )
        )
        if parent is not None:
            ledger.consent_grant(
                contact=child,
                channel="email",
                purpose=newsletter,
                basis="consent",
                source=Source.FRONT_DESK,
                principal=Principal(actor="guardian", guardian=parent, recorded_by="demo-seed"),
            )
            result.events += 1
        result.contacts += 1
    _demo_campaigns()
    # An address that bounced, for every brand.
    ledger.suppression_add(
        channel="email",
        address="bounced@example.no",
        reason="hard_bounce",
        source=Source.LIFEVISION_WEBHOOK,
        principal=system,
    )
    result.events += 1
    return result


def _demo_ledger(rng: random.Random, contact: Contact, newsletter, dialogue, followup, staff, system) -> int:  # type: ignore[no-untyped-def]
    """Give a contact a plausible consent history; returns how many events it wrote."""
    events = 0
    web = Evidence(ip=f"192.0.2.{rng.randint(1, 254)}", user_agent="Mozilla/5.0 (demo)")
    roll = rng.random()
    if contact.kind == "member":
        for channel in ("email", "sms"):
            ledger.consent_grant(
                contact=contact,
                channel=channel,
                purpose=dialogue,
                basis="soft_opt_in",
                source=Source.FRONT_DESK,
                principal=staff,
                opt_out_offered=True,
            )
            events += 1
    if contact.kind == "guest":
        ledger.consent_grant(
            contact=contact,
            channel="sms",
            purpose=followup,
            basis="consent",
            source=Source.FRONT_DESK,
            principal=staff,
            evidence=Evidence(proof_sha256=f"{rng.getrandbits(256):064x}"),
        )
        events += 1
    if roll < 0.6:
        grant = ledger.consent_grant(
            contact=contact,
            channel="email",
            purpose=newsletter,
            basis="consent",
            source=Source.WEB_FORM,
            principal=Principal(actor="self", recorded_by="demo-seed"),
            evidence=web,
        )
        events += 1
        if roll < 0.5:
            ledger.consent_confirm(
                grant=grant, source=Source.WEB_FORM, principal=Principal(actor="self"), evidence=web
            )
            events += 1
    if 0.6 <= roll < 0.7:
        ledger.consent_withdraw(
            contact=contact,
            channel="email",
            purpose=None,
            source=Source.UNSUBSCRIBE_LINK,
            principal=Principal(actor="self"),
            evidence=web,
        )
        events += 1
    elif 0.7 <= roll < 0.75:
        ledger.objection_record(contact=contact, source=Source.FRONT_DESK, principal=staff)
        events += 1
    return events


def _demo_campaigns() -> None:
    fit24 = Brand.objects.get(key="fit24")
    campaign_create(
        brand=fit24,
        data=CampaignInput(
            name="Vinterkampanje for medlemmer",
            channel="sms",
            purpose="member-dialogue",
            audience={"kinds": ["member"]},
            text="Hei {first_name}! Ta med en venn gratis på trening hele desember.",
        ),
        created_by="demo-seed",
    )
    campaign_create(
        brand=fit24,
        data=CampaignInput(
            name="Nyhetsbrev desember",
            channel="email",
            purpose="fit24-newsletter",
            subject="Nytt fra FIT24, {first_name}",
            html="<h1>Hei {first_name}!</h1><p>Nye timer på {centre} i desember.</p>",
            text="Hei {first_name}! Nye timer på {centre} i desember.",
        ),
        created_by="demo-seed",
    )


def _demo_followup_rules(brand: Brand, purpose: str) -> None:
    """An SMS the day after a trial visit and an email three days after (comms.campaigns.followups)."""
    followup_rule_create(
        brand=brand,
        data=FollowUpRuleInput(
            name="SMS dagen etter prøvetimen",
            trigger="trial_visit",
            delay_hours=24,
            channel="sms",
            purpose=purpose,
            text="Hei {first_name}! Takk for prøvetimen hos {brand}. Bli medlem denne uka og få første måned gratis.",
        ),
        created_by="demo-seed",
    )
    followup_rule_create(
        brand=brand,
        data=FollowUpRuleInput(
            name="E-post tre dager etter",
            trigger="trial_visit",
            delay_hours=72,
            channel="email",
            purpose=purpose,
            subject="Klar for neste økt, {first_name}?",
            text="Hei {first_name}! Vi håper du likte prøvetimen hos {brand} {centre}. Svar gjerne på denne e-posten.",
        ),
        created_by="demo-seed",
    )
