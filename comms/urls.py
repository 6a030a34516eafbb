from django.contrib import admin
from django.urls import include, path

from comms.api import api
from comms.core import views as core_views

admin.site.site_header = "comms"
admin.site.site_title = "comms"
admin.site.index_title = "Consent-enforcing campaigns"

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("metrics", core_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("studio/", include("comms.studio.urls")),
    path("hooks/lifevision/", include("integrations.lifevision.urls")),
    path("hooks/mailchimp/", include("integrations.mailchimp.urls")),
    path("", include("comms.web.urls")),
]
