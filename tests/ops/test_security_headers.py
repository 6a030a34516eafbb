"""The public sign-up form is the one page other sites may frame."""


def test_the_sign_up_form_may_be_framed_by_the_configured_sites_and_nothing_else_may(
    client, brand, purpose, settings
):
    settings.EMBED_FRAME_ANCESTORS = "https://fit24.example"
    signup = client.get(f"/signup/{brand.key}/{purpose.key}")
    assert signup.status_code == 200
    assert "frame-ancestors https://fit24.example" in signup["Content-Security-Policy"]
    assert "X-Frame-Options" not in signup
    admin = client.get("/admin/login/")
    assert "frame-ancestors 'none'" in admin["Content-Security-Policy"]
