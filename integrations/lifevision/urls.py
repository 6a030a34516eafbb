"""Mounted at ``hooks/lifevision/`` by ``comms/urls.py``."""

from django.urls import path

from integrations.lifevision import views

app_name = "lifevision"

urlpatterns = [
    path("reports", views.reports, name="reports"),
    path("inbound", views.inbound, name="inbound"),
]
