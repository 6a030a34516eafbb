"""Who gets into the studio, and what they see of other brands."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.campaigns.campaign_helpers import make_campaign

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_the_login(client: Client):
    response = client.get("/studio/")
    assert response.status_code == 302
    assert response["Location"].startswith("/studio/login/?next=/studio/")


def test_a_user_outside_the_studio_groups_gets_403(make_user, client: Client):
    client.force_login(make_user("front", groups=("staff",)))
    response = client.get("/studio/")
    assert response.status_code == 403
    assert "Ingen tilgang" in response.content.decode()


def test_a_marketer_logs_in_with_the_form(marketer, client: Client):
    response = client.post("/studio/login/", {"username": "mia", "password": "wrong"})
    assert response.status_code == 200
    assert "Feil brukernavn eller passord" in response.content.decode()
    response = client.post("/studio/login/", {"username": "mia", "password": "studio-pass-1234"})
    assert response.status_code == 302 and response["Location"] == "/studio/"
    assert client.get("/studio/").status_code == 200


def test_a_marketer_sees_only_campaigns_of_their_brands(studio, brand, other_brand, make_purpose):
    mine = make_campaign(brand, make_purpose(), name="FIT24 vinter")
    theirs_purpose = make_purpose(key="k24-news", brand=other_brand)
    theirs = make_campaign(other_brand, theirs_purpose, name="Klinikk24 tilbud")
    page = studio.get("/studio/").content.decode()
    assert "FIT24 vinter" in page and "Klinikk24 tilbud" not in page
    assert studio.get(f"/studio/campaigns/{mine.pk}/").status_code == 200
    assert studio.get(f"/studio/campaigns/{theirs.pk}/").status_code == 404
    assert studio.post(f"/studio/campaigns/{theirs.pk}/cancel/").status_code == 404
    assert studio.get(f"/studio/campaigns/{theirs.pk}/deliveries.csv").status_code == 404
    assert studio.get("/studio/campaigns/new/?brand=klinikk24&channel=sms").status_code == 422


def test_the_dpo_group_sees_every_brand(make_user, brand, other_brand, make_purpose):
    make_campaign(other_brand, make_purpose(key="k24-news", brand=other_brand), name="Klinikk24 tilbud")
    client = Client()
    client.force_login(make_user("dora", groups=("dpo",)))
    assert "Klinikk24 tilbud" in client.get("/studio/").content.decode()


def test_the_studio_speaks_english_when_asked(studio):
    assert "Kampanjer" in studio.get("/studio/").content.decode()
    response = studio.post("/studio/language/", {"language": "en", "next": "/studio/"})
    assert response.status_code == 302
    page = studio.get("/studio/").content.decode()
    assert '<html lang="en">' in page and "Campaigns" in page and "Kampanjer" not in page


def test_the_admin_stays_norwegian_after_an_english_studio_page(studio, marketer):
    studio.post("/studio/language/", {"language": "en", "next": "/studio/"})
    studio.get("/studio/")
    marketer.is_staff = marketer.is_superuser = True
    marketer.save()
    admin = studio.get("/admin/").content.decode()
    assert "Kampanjer" in admin and "Utsendinger" in admin and ">Campaigns<" not in admin


def test_studio_user_upsert_makes_a_marketer_of_the_brands_given(brand, other_brand):
    from comms.studio.access import studio_brands
    from comms.studio.services import studio_user_upsert

    user = studio_user_upsert(username="demo", password="pw-1234567890", brands=[brand])
    assert list(studio_brands(user)) == [brand]
    again = studio_user_upsert(username="demo", password="pw-0987654321", brands=[other_brand])
    assert again.pk == user.pk and list(studio_brands(again)) == [other_brand]
    client = Client()
    assert client.login(username="demo", password="pw-0987654321")
    assert client.get("/studio/").status_code == 200


def test_the_studio_login_shares_the_admins_throttle(marketer):
    from django.core.cache import cache

    cache.clear()
    client = Client(REMOTE_ADDR="10.9.0.1")
    for _ in range(5):
        assert client.post("/studio/login/", {"username": "mia", "password": "wrong"}).status_code == 200
    blocked = client.post("/studio/login/", {"username": "mia", "password": "studio-pass-1234"})
    assert blocked.status_code == 429
    cache.clear()
