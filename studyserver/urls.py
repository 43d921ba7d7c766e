"""Root URLs: admin, the user API, the viewer channel, schema and health."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import healthz
from .ping import PingView

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    re_path(r"^api/ping/?$", PingView.as_view(), name="ping"),
    path("api/", include("study.api.urls")),
    path("publish/", include("publishing.urls")),
    path("ingest/", include("ingest.urls")),
]

handler404 = "studyserver.health.not_found"
handler500 = "studyserver.health.server_error"
