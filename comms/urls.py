from django.contrib import admin
from django.urls import include, path

from comms.api import api
from comms.campaigns import providers
from comms.ops import views as ops_views

admin.site.site_header = "comms"
admin.site.site_title = "comms"
admin.site.index_title = "Consent-enforcing campaigns"

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("studio/", include("comms.studio.urls")),
    # Each provider's callbacks (comms.campaigns.providers: ``urls``), at hooks/<name>/.
    *(path(f"hooks/{p.name}/", include(p.urls)) for p in providers.registered() if p.urls),
    path("", include("comms.web.urls")),
]
