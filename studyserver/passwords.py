"""A new password signs out every app: the user's API token is deleted when the password changes."""

from typing import Any

from rest_framework.authtoken.models import Token


class ApiTokenRevokedOnChange:
    """Listed in AUTH_PASSWORD_VALIDATORS for its `password_changed` hook, not to judge passwords.

    Django calls `password_changed` on every validator once a new password is saved (`set_password` then `save`: the
    admin's password forms, `manage.py changepassword`), and not when a login rehashes an unchanged password with a
    newer hasher, so an upgrade does not sign anyone out.
    """

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            Token.objects.filter(user_id=user.pk).delete()

    def get_help_text(self) -> str:
        return "A new password signs out every app that uses this user's API token."
