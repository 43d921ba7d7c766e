"""Root URLs: admin, the user API, the viewer channel, schema and health."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz, not_found
from .ping import PingView

urlpatterns = [
    path("admin/", admin.site.urls),
    re_path(r"^healthz/?$", healthz, name="healthz"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file of its own: no inline script, so the docs page
    # runs under the same Content-Security-Policy as every other page. GET only: DRF answered OPTIONS with its
    # metadata through the page's HTML renderer, which has no template for it (a 500).
    re_path(r"^api/docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema", http_method_names=["get", "head"]),
            name="api-docs"),
    re_path(r"^api/ping/?$", PingView.as_view(), name="ping"),
    path("api/", include("study.api.urls")),
    path("publish/", include("publishing.urls")),
    path("ingest/", include("ingest.urls")),
    # JSON everywhere (API.md), also for a path no route matches under these prefixes (the bare prefix too: every
    # path works without its slash) and with DEBUG on, where Django would answer its HTML "Page not found" page
    # instead of handler404.
    re_path(r"^(?:api|publish|ingest)(?:/|$)", not_found),
]

handler400 = "studyserver.health.bad_request"
handler404 = "studyserver.health.not_found"
handler500 = "studyserver.health.server_error"
