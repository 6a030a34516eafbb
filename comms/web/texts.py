"""Every text on the member pages and in their service messages, in bokmål and English.

Two languages and a few dozen strings: a dict is simpler than gettext catalogues and keeps both
languages side by side, so a missing translation is a failing test, not a silent fallback.
Placeholders are ``str.format`` fields, filled by ``text()``; the templates escape the result.

About 400 lines of strings, in two languages: a catalogue, not code.
"""

from __future__ import annotations

from typing import Any

LANGUAGES = ("nb", "en")
DEFAULT_LANGUAGE = "nb"

TEXTS: dict[str, dict[str, str]] = {
    # --- frame ----------------------------------------------------------------------------------
    "site_name": {"nb": "Meldinger og samtykke", "en": "Messages and consent"},
    "switch_language": {"nb": "English", "en": "Norsk"},
    "switch_language_code": {"nb": "en", "en": "nb"},
    "footer": {
        "nb": "Denne siden bruker ingen sporingscookies. Lenken din er personlig – ikke del den.",
        "en": "This page uses no tracking cookies. Your link is personal – please do not share it.",
    },
    "channel_email": {"nb": "e-post", "en": "email"},
    "channel_sms": {"nb": "SMS", "en": "SMS"},
    "notice_label": {"nb": "Se hva du har sagt ja til", "en": "See what you agreed to"},
    "notice_version": {"nb": "Samtykketekst, versjon {version}", "en": "Consent text, version {version}"},
    "to_preferences": {"nb": "Gå til innstillingene dine", "en": "Go to your preferences"},
    # --- unsubscribe ------------------------------------------------------------------------------
    "unsubscribe_title": {"nb": "Meld deg av", "en": "Unsubscribe"},
    "unsubscribe_lead": {
        "nb": "{brand} sender deg «{purpose}» på {channel} til {address}.",
        "en": "{brand} sends you “{purpose}” by {channel} to {address}.",
    },
    "unsubscribe_legend": {"nb": "Hva vil du melde deg av?", "en": "What do you want to unsubscribe from?"},
    "scope_purpose": {"nb": "Bare «{purpose}»", "en": "Only “{purpose}”"},
    "scope_purpose_hint": {
        "nb": "Du får fortsatt andre meldinger du har sagt ja til.",
        "en": "You still get other messages you have agreed to.",
    },
    "scope_channel_email": {"nb": "All e-post fra {brand}", "en": "All email from {brand}"},
    "scope_channel_sms": {"nb": "Alle SMS fra {brand}", "en": "All text messages from {brand}"},
    "scope_channel_hint": {
        "nb": "Alt {brand} sender deg på {channel}.",
        "en": "Everything {brand} sends you by {channel}.",
    },
    "scope_all": {"nb": "All markedsføring fra {brand}", "en": "All marketing from {brand}"},
    "scope_all_hint": {
        "nb": "Både e-post og SMS. Dette er en innsigelse mot direkte markedsføring (GDPR art. 21).",
        "en": "Both email and SMS. This is an objection to direct marketing (GDPR art. 21).",
    },
    "unsubscribe_button": {"nb": "Meld meg av", "en": "Unsubscribe me"},
    "unsubscribe_nothing_yet": {
        "nb": "Ingenting endres før du trykker på knappen.",
        "en": "Nothing changes until you press the button.",
    },
    "unsubscribe_rather": {
        "nb": "Vil du heller velge hva du får?",
        "en": "Would you rather choose what you get?",
    },
    "choose_scope": {"nb": "Velg ett av alternativene.", "en": "Please choose one of the options."},
    # --- unsubscribe done -------------------------------------------------------------------------
    "done_title": {"nb": "Du er meldt av", "en": "You are unsubscribed"},
    "done_purpose": {
        "nb": "Du får ikke lenger «{purpose}» fra {brand} på {channel}.",
        "en": "You will no longer get “{purpose}” from {brand} by {channel}.",
    },
    "done_channel_email": {
        "nb": "Du får ikke lenger e-post fra {brand}.",
        "en": "You will no longer get email from {brand}.",
    },
    "done_channel_sms": {
        "nb": "Du får ikke lenger SMS fra {brand}.",
        "en": "You will no longer get text messages from {brand}.",
    },
    "done_all": {
        "nb": "{brand} sender deg ikke lenger markedsføring, verken på e-post eller SMS.",
        "en": "{brand} will no longer send you marketing, by email or by SMS.",
    },
    "done_already": {
        "nb": "Du var allerede meldt av, så ingenting er endret.",
        "en": "You were already unsubscribed, so nothing has changed.",
    },
    "done_immediate": {
        "nb": "Det gjelder fra nå av – også for utsendelser som er i gang.",
        "en": "It takes effect right now – also for mailings already under way.",
    },
    "done_regret": {
        "nb": "Ombestemt deg? Du kan melde deg på igjen i innstillingene dine.",
        "en": "Changed your mind? You can subscribe again in your preferences.",
    },
    # --- preferences ------------------------------------------------------------------------------
    "preferences_title": {"nb": "Dine innstillinger", "en": "Your preferences"},
    "preferences_lead": {
        "nb": "Velg hva {brand} kan sende deg på {channel} til {address}.",
        "en": "Choose what {brand} may send you by {channel} to {address}.",
    },
    "preferences_legend": {"nb": "Dette kan vi sende deg", "en": "What we may send you"},
    "preferences_none": {
        "nb": "{brand} sender ingenting på {channel} som du kan velge her.",
        "en": "{brand} sends nothing by {channel} that you can choose here.",
    },
    "preferences_double_opt_in": {
        "nb": "Når du melder deg på, sender vi en bekreftelseslenke til {address}. "
        "Påmeldingen gjelder først når du har bekreftet.",
        "en": "When you subscribe, we send a confirmation link to {address}. "
        "The subscription takes effect only once you confirm.",
    },
    "preferences_save": {"nb": "Lagre valgene", "en": "Save my choices"},
    "status_on": {"nb": "Påmeldt", "en": "Subscribed"},
    "status_pending": {"nb": "Venter på bekreftelse", "en": "Awaiting your confirmation"},
    "status_off": {"nb": "Ikke påmeldt", "en": "Not subscribed"},
    "status_withdrawn": {"nb": "Avmeldt", "en": "Unsubscribed"},
    "status_renew": {"nb": "Må fornyes", "en": "Needs renewing"},
    "status_unavailable": {"nb": "Ikke tilgjengelig", "en": "Not available"},
    "status_pending_hint": {
        "nb": "Vi har sendt deg en bekreftelseslenke.",
        "en": "We have sent you a confirmation link.",
    },
    "status_renew_hint": {
        "nb": "Teksten du sa ja til er endret, eller samtykket er gammelt. Kryss av for å fornye det.",
        "en": "The text you agreed to has changed, or your consent is old. Tick the box to renew it.",
    },
    "status_unavailable_hint": {
        "nb": "Dette kan du ikke endre her. Kontakt oss om du har spørsmål.",
        "en": "You cannot change this here. Contact us if you have questions.",
    },
    "saved_title": {"nb": "Valgene dine er lagret", "en": "Your choices are saved"},
    "saved_nothing": {"nb": "Du gjorde ingen endringer.", "en": "You made no changes."},
    "saved_withdrawn": {"nb": "Meldt av: {names}.", "en": "Unsubscribed: {names}."},
    "saved_requested": {
        "nb": "Vi har sendt en bekreftelseslenke til {address} for: {names}. "
        "Påmeldingen gjelder når du har trykket på lenken.",
        "en": "We have sent a confirmation link to {address} for: {names}. "
        "The subscription takes effect once you open the link.",
    },
    "saved_refused_minor": {
        "nb": "Du må være minst {age} år for å melde deg på selv. En foresatt kan gjøre det for deg.",
        "en": "You must be at least {age} to subscribe yourself. A parent or guardian can do it for you.",
    },
    "saved_refused": {
        "nb": "Vi kunne ikke melde deg på «{purpose}».",
        "en": "We could not subscribe you to “{purpose}”.",
    },
    "stop_title": {"nb": "Meld deg av alt", "en": "Unsubscribe from everything"},
    "stop_channel_email": {"nb": "Meld meg av all e-post", "en": "Unsubscribe me from all email"},
    "stop_channel_sms": {"nb": "Meld meg av alle SMS", "en": "Unsubscribe me from all text messages"},
    "stop_all": {"nb": "Stopp all markedsføring", "en": "Stop all marketing"},
    "stop_all_hint": {
        "nb": "«Stopp all markedsføring» gjelder både e-post og SMS, og er en innsigelse mot direkte "
        "markedsføring (GDPR art. 21).",
        "en": "“Stop all marketing” covers both email and SMS, and is an objection to direct marketing "
        "(GDPR art. 21).",
    },
    "stop_lead": {
        "nb": "Vil du ikke høre fra {brand} i det hele tatt? Det gjelder fra det øyeblikket du trykker.",
        "en": "Don't want to hear from {brand} at all? It takes effect the moment you press.",
    },
    # --- double opt-in --------------------------------------------------------------------------
    "confirm_title": {"nb": "Bekreft påmeldingen", "en": "Confirm your subscription"},
    "confirm_lead": {
        "nb": "Trykk på knappen for å bekrefte at {brand} kan sende deg dette på {channel} til {address}:",
        "en": "Press the button to confirm that {brand} may send you this by {channel} to {address}:",
    },
    "confirm_button": {"nb": "Ja, bekreft", "en": "Yes, confirm"},
    "confirm_ignore": {
        "nb": "Har du ikke bedt om dette? Lukk siden, så skjer ingenting.",
        "en": "Didn't ask for this? Close the page and nothing happens.",
    },
    "confirmed_title": {"nb": "Takk – påmeldingen er bekreftet", "en": "Thank you – you are subscribed"},
    "confirmed_lead": {
        "nb": "Fra nå av kan {brand} sende deg dette på {channel}:",
        "en": "From now on {brand} may send you this by {channel}:",
    },
    "confirmed_regret": {
        "nb": "Du kan melde deg av når som helst, med lenken i hver melding eller i innstillingene dine.",
        "en": "You can unsubscribe at any time, with the link in every message or in your preferences.",
    },
    "used_title": {"nb": "Allerede bekreftet", "en": "Already confirmed"},
    "used_lead": {
        "nb": "Denne lenken er allerede brukt, så ingenting er endret.",
        "en": "This link has already been used, so nothing has changed.",
    },
    "cancelled_title": {"nb": "Lenken gjelder ikke lenger", "en": "This link no longer applies"},
    "cancelled_lead": {
        "nb": "Du har meldt deg av etter at lenken ble sendt, eller adressen er endret. "
        "Vi har derfor ikke meldt deg på. Du kan be om en ny lenke under.",
        "en": "You unsubscribed after the link was sent, or the address has changed, "
        "so we have not subscribed you. You can ask for a new link below.",
    },
    # --- bad links ------------------------------------------------------------------------------
    "bad_title": {"nb": "Lenken virker ikke", "en": "This link does not work"},
    "bad_lead": {
        "nb": "Lenken kan være ufullstendig, skrevet feil eller ikke lenger i bruk. "
        "Kopier hele lenken fra meldingen, eller få en ny lenke her.",
        "en": "The link may be incomplete, mistyped or no longer in use. "
        "Copy the whole link from the message, or get a new link here.",
    },
    "expired_title": {"nb": "Lenken er utløpt", "en": "This link has expired"},
    "expired_lead": {
        "nb": "Av sikkerhetshensyn virker lenkene bare en stund. Få en ny lenke her.",
        "en": "For your security, links only work for a while. Get a new link here.",
    },
    "forbidden_title": {"nb": "Skjemaet er utløpt", "en": "The form has expired"},
    "forbidden_lead": {
        "nb": "Vi kunne ikke godta skjemaet. Gå tilbake, last siden på nytt og prøv igjen.",
        "en": "We could not accept the form. Go back, reload the page and try again.",
    },
    # --- lost link ------------------------------------------------------------------------------
    "lost_title": {"nb": "Få en ny lenke", "en": "Get a new link"},
    "lost_lead": {
        "nb": "Skriv e-postadressen eller mobilnummeret ditt, så sender vi en lenke til "
        "innstillingene dine dit.",
        "en": "Enter your email address or mobile number and we will send a link to your preferences there.",
    },
    "lost_label": {"nb": "E-post eller mobilnummer", "en": "Email or mobile number"},
    "lost_hint": {
        "nb": "For eksempel kari@example.no eller 412 34 567",
        "en": "For example kari@example.no or +47 412 34 567",
    },
    "lost_button": {"nb": "Send meg en lenke", "en": "Send me a link"},
    "lost_invalid": {
        "nb": "Skriv en gyldig e-postadresse eller et mobilnummer.",
        "en": "Enter a valid email address or mobile number.",
    },
    "lost_sent_title": {"nb": "Sjekk innboksen din", "en": "Check your inbox"},
    "lost_sent_lead": {
        "nb": "Hvis {address} er registrert hos oss, får du en lenke dit om kort tid. "
        "Kommer det ingenting, er adressen ikke registrert, eller den er skrevet annerledes.",
        "en": "If {address} is registered with us, a link is on its way there. "
        "If nothing arrives, the address is not registered, or it was spelled differently.",
    },
    "lost_limited_title": {"nb": "For mange forsøk", "en": "Too many attempts"},
    "lost_limited_lead": {
        "nb": "Du har bedt om mange lenker på kort tid. Vent litt og prøv igjen.",
        "en": "You have asked for many links in a short time. Please wait a while and try again.",
    },
    # --- service messages -------------------------------------------------------------------------
    "mail_confirm_subject": {
        "nb": "Bekreft påmeldingen din hos {brand}",
        "en": "Confirm your subscription with {brand}",
    },
    "mail_confirm_text": {
        "nb": "Hei!\n\nDu har bedt om å få {names} fra {brand} på {channel}. "
        "Bekreft påmeldingen med lenken under (den virker i {hours} timer):\n\n{url}\n\n"
        "Har du ikke bedt om dette, kan du se bort fra meldingen – da skjer ingenting.",
        "en": "Hello!\n\nYou asked to get {names} from {brand} by {channel}. "
        "Confirm with the link below (it works for {hours} hours):\n\n{url}\n\n"
        "If you did not ask for this, ignore this message and nothing happens.",
    },
    "sms_confirm_text": {
        "nb": "{brand}: Bekreft at du vil få {names} på SMS: {url}",
        "en": "{brand}: Confirm that you want {names} by SMS: {url}",
    },
    "mail_link_subject": {
        "nb": "Lenken til innstillingene dine hos {brand}",
        "en": "The link to your preferences with {brand}",
    },
    "mail_link_text": {
        "nb": "Hei!\n\nHer er lenken til innstillingene dine hos {brand}. Der velger du hva vi "
        "sender deg, eller melder deg av:\n\n{url}\n\n"
        "Har du ikke bedt om dette, kan du se bort fra meldingen.",
        "en": "Hello!\n\nHere is the link to your preferences with {brand}. There you choose what we "
        "send you, or unsubscribe:\n\n{url}\n\n"
        "If you did not ask for this, you can ignore this message.",
    },
    "sms_link_text": {
        "nb": "{brand}: Her er lenken til innstillingene dine: {url}",
        "en": "{brand}: Here is the link to your preferences: {url}",
    },
    # --- sign-up ----------------------------------------------------------------------------------
    "signup_title": {"nb": "Meld deg på", "en": "Sign up"},
    "signup_lead": {
        "nb": "Få «{purpose}» fra {brand}.",
        "en": "Get “{purpose}” from {brand}.",
    },
    "signup_address_email": {"nb": "E-postadresse", "en": "Email address"},
    "signup_address_sms": {"nb": "Mobilnummer", "en": "Mobile number"},
    "signup_address_email_sms": {
        "nb": "E-postadresse eller mobilnummer",
        "en": "Email address or mobile number",
    },
    "signup_first_name": {"nb": "Fornavn (valgfritt)", "en": "First name (optional)"},
    "signup_honeypot": {"nb": "La dette feltet stå tomt", "en": "Leave this field empty"},
    "signup_button": {"nb": "Meld meg på", "en": "Sign me up"},
    "signup_double_opt_in": {
        "nb": "Vi sender deg en lenke du må trykke på før noe blir sendt. Du kan melde deg av når som helst.",
        "en": "We send you a link you must press before anything is sent. You can unsubscribe at any time.",
    },
    "signup_sent_title": {"nb": "Sjekk innboksen din", "en": "Check your inbox"},
    "signup_sent_lead": {
        "nb": "Hvis adressen kan motta meldinger fra oss, får du straks en lenke for å bekrefte påmeldingen. "
        "Ingenting sendes før du har bekreftet.",
        "en": "If the address can receive messages from us, a link to confirm your sign-up is on its way. "
        "Nothing is sent until you confirm.",
    },
    "signup_invalid": {
        "nb": "Skriv inn en gyldig e-postadresse eller et mobilnummer.",
        "en": "Please enter a valid email address or mobile number.",
    },
    "signup_expired": {
        "nb": "Skjemaet er utløpt eller teksten er endret. Les teksten og prøv igjen.",
        "en": "The form has expired or its text has changed. Please read it and try again.",
    },
    "signup_limited": {
        "nb": "For mange påmeldinger på kort tid. Prøv igjen senere.",
        "en": "Too many sign-ups in a short time. Please try again later.",
    },
    # --- self-service rights -----------------------------------------------------------------------
    "rights_heading": {"nb": "Dine personopplysninger", "en": "Your personal data"},
    "rights_lead": {
        "nb": "Du kan laste ned alt vi har om deg, eller be oss slette det. Vi sender først en lenke til {address} "
        "for å være sikre på at det er deg.",
        "en": "You can download everything we hold about you, or ask us to erase it. We first send a link to "
        "{address} to make sure it is you.",
    },
    "renew_hint": {
        "nb": "Samtykket ditt må fornyes snart, eller teksten er endret siden du sa ja.",
        "en": "Your consent needs renewing soon, or the text has changed since you agreed.",
    },
    "renew_button": {"nb": "Forny samtykket", "en": "Renew my consent"},
    "rights_offer": {
        "nb": "Du kan laste ned alt vi har om deg, eller be oss slette det. Vi sender først en lenke til "
        "adressen din, for å være sikre på at det er deg.",
        "en": "You can download everything we hold about you, or ask us to erase it. We first send a link "
        "to your address, to make sure it is you.",
    },
    "rights_send_link": {"nb": "Send meg en lenke", "en": "Send me a link"},
    "rights_export_button": {"nb": "Last ned dataene mine", "en": "Download my data"},
    "rights_erase_button": {"nb": "Slett dataene mine", "en": "Erase my data"},
    "rights_link_sent": {
        "nb": "Vi har sendt en lenke til {address}. Den virker i {hours} timer.",
        "en": "We have sent a link to {address}. It works for {hours} hours.",
    },
    "rights_export_title": {"nb": "Last ned dataene dine", "en": "Download your data"},
    "rights_export_lead": {
        "nb": "Filen (JSON) inneholder alt {brand} har om deg: profil, samtykker med teksten du så, "
        "hendelser og meldinger.",
        "en": "The file (JSON) holds everything {brand} keeps about you: profile, consents with the text "
        "you saw, events and messages.",
    },
    "rights_erase_title": {"nb": "Slette dataene dine", "en": "Erase your data"},
    "rights_erase_lead": {
        "nb": "Vi sletter navn, adresser og historikk. Vi beholder bare en uleselig kode for adressen din, "
        "slik at vi aldri sender deg markedsføring igjen.",
        "en": "We erase your name, addresses and history. We keep only an unreadable code of your address, "
        "so that we never send you marketing again.",
    },
    "rights_erase_confirm": {"nb": "Ja, slett dataene mine", "en": "Yes, erase my data"},
    "rights_erased": {
        "nb": "Dataene dine er slettet. Du får ikke flere meldinger fra {brand}.",
        "en": "Your data has been erased. You will get no more messages from {brand}.",
    },
    "rights_queued": {
        "nb": "Vi har mottatt forespørselen din. Personvernombudet behandler den innen {due}.",
        "en": "We have received your request. Our data protection officer handles it by {due}.",
    },
    "mail_rights_subject": {
        "nb": "Bekreft forespørselen din hos {brand}",
        "en": "Confirm your request with {brand}",
    },
    "mail_rights_text": {
        "nb": "Hei!\n\nNoen (forhåpentligvis du) ba om innsyn i eller sletting av dataene dine hos {brand}. "
        "Åpne lenken for å fortsette:\n\n{url}\n\nLenken virker i {hours} timer. "
        "Har du ikke bedt om dette, kan du se bort fra meldingen.",
        "en": "Hello!\n\nSomeone (hopefully you) asked to see or erase your data with {brand}. "
        "Open the link to continue:\n\n{url}\n\nThe link works for {hours} hours. "
        "If you did not ask for this, you can ignore this message.",
    },
    "sms_rights_text": {
        "nb": "{brand}: Åpne lenken for å se eller slette dataene dine ({hours} t): {url}",
        "en": "{brand}: Open the link to see or erase your data ({hours} h): {url}",
    },
}


def language(value: str | None) -> str:
    """The page language: English only when asked for, bokmål otherwise."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, lang: str, **values: Any) -> str:
    template = TEXTS[key][lang]
    return template.format(**values) if values else template


def catalogue(lang: str) -> dict[str, str]:
    """Every plain text in one language, for the templates (``{{ t.unsubscribe_title }}``)."""
    return {key: texts[lang] for key, texts in TEXTS.items()}


def channel_name(channel: str, lang: str) -> str:
    return text("channel_email" if channel == "email" else "channel_sms", lang)


def names_list(names: list[str], lang: str) -> str:
    """«A», «B» og «C» / “A”, “B” and “C”."""
    quoted = [f"«{n}»" if lang == "nb" else f"“{n}”" for n in names]
    if len(quoted) <= 1:
        return "".join(quoted)
    joiner = " og " if lang == "nb" else " and "
    return ", ".join(quoted[:-1]) + joiner + quoted[-1]
