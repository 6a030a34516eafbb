"""The marketer's studio: /studio/… (Django login, marketer or dpo group)."""

from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.i18n import set_language

from comms.studio import followup_views, views

app_name = "studio"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login, name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="studio:login"), name="logout"),
    path("language/", set_language, name="language"),
    path("campaigns/new/", views.campaign_new, name="campaign-new"),
    path("campaigns/preview/", views.composer_preview, name="composer-preview"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:campaign_id>/edit/", views.campaign_edit, name="campaign-edit"),
    path("campaigns/<int:campaign_id>/report/", views.campaign_report, name="campaign-report"),
    path("campaigns/<int:campaign_id>/schedule/", views.campaign_schedule, name="campaign-schedule"),
    path("campaigns/<int:campaign_id>/test/", views.campaign_test, name="campaign-test"),
    path("campaigns/<int:campaign_id>/count/", views.campaign_count, name="campaign-count"),
    path("campaigns/<int:campaign_id>/deliveries.csv", views.campaign_csv, name="campaign-csv"),
    path("campaigns/<int:campaign_id>/<slug:action>/", views.campaign_action, name="campaign-action"),
    path("followups/", followup_views.followup_list, name="followups"),
    path("followups/new/", followup_views.followup_new, name="followup-new"),
    path("followups/<int:rule_id>/", followup_views.followup_detail, name="followup"),
]
