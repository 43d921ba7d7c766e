"""The viewer channel's gate, shared by the feed and ingest: Bearer VIEWER_SYNC_TOKEN and the "viewer" throttle."""

from django.conf import settings
from django.utils.crypto import constant_time_compare
from rest_framework import status
from rest_framework.permissions import BasePermission

from studyserver.errors import ApiError, ServiceUnavailable
from studyserver.throttling import SettingsScopedRateThrottle


class ViewerNotAuthenticated(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "not_authenticated"
    default_detail = "A Bearer token is required."


class ViewerForbidden(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"
    default_detail = "The token is not valid."


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class HasViewerToken(BasePermission):
    """Token unset on the server → 503; missing → 401; wrong → 403 (compared in constant time)."""

    def has_permission(self, request, view) -> bool:
        expected = settings.VIEWER_SYNC_TOKEN
        if not expected:
            raise ServiceUnavailable("The viewer channel is not configured (VIEWER_SYNC_TOKEN).")
        given = bearer_token(request)
        if given is None:
            raise ViewerNotAuthenticated()
        if not constant_time_compare(given, expected):
            raise ViewerForbidden()
        return True


class ViewerChannelMixin:
    """DRF view settings of every viewer endpoint: no user auth, the token gate, the viewer throttle."""

    authentication_classes: list = []
    permission_classes = [HasViewerToken]
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "viewer"

    def check_permissions(self, request) -> None:
        # The throttle counts before the token is checked (DRF checks permissions first, throttles after):
        # guesses of the token are then limited like any other request, not free.
        self.check_throttles(request)
        super().check_permissions(request)

    def check_throttles(self, request) -> None:
        if getattr(request, "_viewer_throttled", False):  # already counted before the token check
            return
        request._viewer_throttled = True
        super().check_throttles(request)
