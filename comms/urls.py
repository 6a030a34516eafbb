from django.contrib import admin
from django.urls import include, path

from comms.api import api

admin.site.site_header = "comms"
admin.site.site_title = "comms"
admin.site.index_title = "Consent-enforcing campaigns"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("hooks/lifevision/", include("integrations.lifevision.urls")),
    path("", include("comms.web.urls")),
]
