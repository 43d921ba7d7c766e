"""The admin site: Django's, with its login form rate-limited like POST /api/auth/token."""

import math

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponse

from studyserver.throttling import SettingsSimpleRateThrottle


class AdminLoginThrottle(SettingsSimpleRateThrottle):
    """The "auth" rate (THROTTLE_AUTH_RATE) per client address, counted apart from the API's token requests."""

    scope = "auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": "admin_login", "ident": self.get_ident(request)}


class StudyAdminSite(admin.AdminSite):
    """Staff accounts are the most valuable ones: guessing their password costs as much as an API token's."""

    site_header = "studyserver administration"
    site_title = "studyserver admin"
    # No model list beside every page: the lists and the review queue need the width (an iPad in portrait); the
    # index and the breadcrumbs lead everywhere.
    enable_nav_sidebar = False

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST":
            throttle = AdminLoginThrottle()
            if not throttle.allow_request(request, None):
                response = HttpResponse("Too many login attempts. Try again later.", status=429,
                                        content_type="text/plain; charset=utf-8")
                response["Retry-After"] = str(math.ceil(throttle.wait() or 60))
                return response
        return super().login(request, extra_context)


class StudyAdminConfig(AdminConfig):
    default_site = "studyserver.admin.StudyAdminSite"
