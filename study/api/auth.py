"""POST /api/auth/token: trade username and password for a DRF token (rate limited); DELETE revokes it."""

from django.contrib.auth.hashers import check_password
from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import Throttled
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from studyserver.parsers import FormParser, JSONParser, MultiPartParser
from studyserver.throttling import SettingsScopedRateThrottle, SignInLocked, account_sign_in

from .common import error_responses


class TokenRequestSerializer(AuthTokenSerializer):
    """DRF's credentials check, inside the account's sign-in throttle: it sees the username as `authenticate()`
    gets it (trimmed; a JSON number as text), so no spelling of the name slips past the lock."""

    def validate(self, attrs: dict) -> dict:
        try:
            with account_sign_in(attrs["username"]):
                return super().validate(attrs)
        except SignInLocked as locked:
            raise Throttled(wait=locked.wait) from None


class ObtainTokenView(ObtainAuthToken):
    # Only the credentials count: a revoked token or a browser's session sent along must not answer 401 / 403.
    authentication_classes: list = []
    throttle_classes = [SettingsScopedRateThrottle]
    throttle_scope = "auth"
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    serializer_class = TokenRequestSerializer

    @extend_schema(
        summary="Obtain an API token",
        description="429 with `Retry-After` when this address has asked too often (`THROTTLE_AUTH_RATE`), or when "
        "the account has had too many failed sign-ins from any address (`THROTTLE_AUTH_ACCOUNT_RATE`): then the right "
        "password is refused too, until the window ends. Tokens already issued keep working.",
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("AuthToken", {"token": serializers.CharField()}),
            **error_responses(400, 429),
        },
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        credentials = self.get_serializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = credentials.validated_data["user"]
        with transaction.atomic():
            # The password was checked against the hash read before the (slow) check. A new password committed
            # meanwhile has revoked the user's tokens: one made now would outlive it. The lock waits for a change
            # in progress; then the password must still match the stored hash (checked again when the hash moved:
            # another login may have rehashed the same password meanwhile).
            current = type(user).objects.select_for_update().filter(pk=user.pk).values_list("password", flat=True)
            stored = current.first()
            password = credentials.validated_data["password"]
            if stored != user.password and not (stored and check_password(password, stored)):
                raise serializers.ValidationError(
                    {"non_field_errors": ["Unable to log in with provided credentials."]}, code="authorization"
                )
            token, _created = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    # DELETE is the one method that needs its caller authenticated: by the token it revokes, or a session.

    @property
    def _revoking(self) -> bool:
        return getattr(self.request, "method", None) == "DELETE"  # (no request while the schema is generated)

    def get_authenticators(self) -> list:
        if self._revoking:
            return [authenticator() for authenticator in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
        return super().get_authenticators()

    def get_permissions(self) -> list:
        return [IsAuthenticated()] if self._revoking else super().get_permissions()

    @extend_schema(
        summary="Revoke the API token",
        description="Deletes the caller's token: every app signed in with it gets 401 from then on. The next "
        "`POST /api/auth/token` issues a new one (a lost device). A new password revokes the token as well.",
        request=None,
        responses={204: None, **error_responses(429)},
    )
    def delete(self, request, *args, **kwargs):
        Token.objects.filter(user=request.user).delete()
        return Response(status=204)
