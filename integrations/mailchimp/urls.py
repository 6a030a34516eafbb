"""Mounted at ``hooks/mailchimp/`` by ``comms/urls.py``."""

from django.urls import path

from integrations.mailchimp import views

app_name = "mailchimp"

urlpatterns = [
    path("<str:secret>", views.hook, name="hook"),
]
