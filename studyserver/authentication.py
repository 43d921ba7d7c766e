"""API token authentication."""

from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, but a key with a NUL byte is refused before the database is asked: PostgreSQL cannot compare a text
    with one, and answered 400 where an unknown token is a 401."""

    def authenticate_credentials(self, key: str) -> tuple:
        if "\x00" in key:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
