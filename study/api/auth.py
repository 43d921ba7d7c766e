"""POST /api/auth/token: trade username and password for a DRF token (rate limited)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser

from studyserver.parsers import JSONParser
from studyserver.throttling import SettingsScopedRateThrottle

from .common import error_responses


class ObtainTokenView(ObtainAuthToken):
    # Only the credentials count: a revoked token or a browser's session sent along must not answer 401 / 403.
    authentication_classes: list = []
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "auth"
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        summary="Obtain an API token",
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("AuthToken", {"token": serializers.CharField()}),
            **error_responses(400, 429),
        },
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
