"""studyserver.passwords: a password turned unusable signs the user's apps out only once it is saved."""

import pytest
from django.core import serializers
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_an_unusable_password_not_among_the_saved_fields_keeps_the_token(user):
    """`save(update_fields=[...])` without "password" stores no new password: the stored one still signs in, and
    the token stays."""
    key = Token.objects.create(user=user).key
    user.set_unusable_password()
    user.first_name = "Renamed"
    user.save(update_fields=["first_name"])
    assert Token.objects.filter(key=key).exists()
    user.save(update_fields=["password"])  # now it is stored
    assert not Token.objects.filter(user=user).exists()


def test_loading_a_fixture_keeps_the_token(user):
    """A raw save (loaddata) of a user row with an unusable password runs no hook: fixtures restore rows as
    they were, they do not sign anyone out."""
    key = Token.objects.create(user=user).key
    user.set_unusable_password()
    [row] = serializers.deserialize("json", serializers.serialize("json", [user]))
    row.save()
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert Token.objects.filter(key=key).exists()
