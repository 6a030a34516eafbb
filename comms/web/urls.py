"""The member's public pages (no key, no login): the signed token in the URL is the authority."""

from django.urls import path

from comms.web import views

app_name = "web"
urlpatterns = [
    path("u/lost", views.lost_link, name="lost-link"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("s/<str:code>", views.short_link, name="short-link"),
    path("preferences/<str:token>", views.preferences, name="preferences"),
    path("confirm/<str:token>", views.confirm, name="confirm"),
]
