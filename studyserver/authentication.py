"""API token authentication."""

from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

_KEY_LENGTH = Token._meta.get_field("key").max_length


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, but a key no token can have is refused before the database is asked: PostgreSQL cannot compare a
    text with a NUL byte, and answered 400 where an unknown token is a 401."""

    def authenticate_credentials(self, key: str):
        if "\x00" in key or len(key) > _KEY_LENGTH:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
