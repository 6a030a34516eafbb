"""The member's public pages (no key, no login): the signed token in the URL is the authority."""

from django.urls import path

from comms.web import rights_views, signup_views, views

app_name = "web"
urlpatterns = [
    path("u/lost", views.lost_link, name="lost-link"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("s/<str:code>", views.short_link, name="short-link"),
    path("preferences/<str:token>", views.preferences, name="preferences"),
    path("preferences/<str:token>/rights", rights_views.rights_request, name="rights-request"),
    path("confirm/<str:token>", views.confirm, name="confirm"),
    path("signup/<slug:brand>/<slug:purpose>", signup_views.signup, name="signup"),
    path("rights/<str:token>", rights_views.rights, name="rights"),
]
