"""API tokens as staff see them: never the whole key."""

from rest_framework.authtoken.models import TokenProxy

KEY_SHOWN_CHARS = 6


def key_prefix(key: str) -> str:
    """The first characters of a token key, enough to tell tokens apart, useless to authenticate with."""
    return f"{key[:KEY_SHOWN_CHARS]}…" if key else ""


class ApiToken(TokenProxy):
    """DRF's token (its admin proxy: pk is the user id) whose text is the key's prefix.

    Everything the admin renders by the object's text (page titles, breadcrumbs, messages, the delete
    confirmation, the action log) then shows the prefix only.
    """

    class Meta:
        proxy = True
        verbose_name = "API token"
        verbose_name_plural = "API tokens"

    def __str__(self) -> str:
        return key_prefix(self.key)
