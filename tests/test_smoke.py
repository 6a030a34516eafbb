from comms.suppression.gate import check


def test_a_fresh_contact_without_consent_is_denied(contact, purpose):
    decision = check(contact=contact, channel="email", purpose=purpose)
    assert (decision.allowed, decision.reason) == (False, "no_consent")


def test_a_confirmed_grant_is_allowed_and_names_its_event(contact, purpose, staff):
    from comms.suppression import services

    event = services.consent_grant(
        contact=contact,
        channel="email",
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=staff,
    )
    decision = check(contact=contact, channel="email", purpose=purpose)
    assert (decision.allowed, decision.reason, decision.event_id) == (True, "consent", event.pk)
