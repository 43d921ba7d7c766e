"""A new password signs out every app: the user's API token is deleted when the password changes."""

from typing import Any

from django.contrib.auth.hashers import is_password_usable
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


def revoke_tokens_when_password_login_is_turned_off(sender: Any, instance: Any, raw: bool = False,
                                                     update_fields: Any = None, **kwargs: Any) -> None:
    """pre_save of the user model. The admin's "disable password-based authentication" (set_unusable_password) is
    no new password and calls no password_changed hook; a user whose password turns unusable is signed out of
    every app too. (A user saved with an unusable password already, say an API-only account, keeps its token.)"""
    if raw or instance.pk is None or instance.has_usable_password():
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = sender._base_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    if stored is not None and is_password_usable(stored):
        Token.objects.filter(user_id=instance.pk).delete()
