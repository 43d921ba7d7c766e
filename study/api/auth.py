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
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "auth"
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        summary="Obtain an API token",
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("AuthToken", {"token": serializers.CharField()}),
            **{k: v for k, v in error_responses(400, 429).items() if k != 401},
        },
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
