"""The token admin shows a prefix of each key, never the whole key; staff can still create a user's token."""

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from study.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(user) -> Token:
    return Token.objects.create(user=user)


def page(admin_client, url: str) -> str:
    response = admin_client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_no_admin_page_shows_the_full_key(admin_client, token):
    pages = [
        reverse("admin:study_apitoken_changelist"),
        reverse("admin:study_apitoken_change", args=[token.user_id]),
        reverse("admin:study_apitoken_delete", args=[token.user_id]),
        reverse("admin:study_apitoken_history", args=[token.user_id]),
        reverse("admin:study_apitoken_changelist") + f"?q={token.user.username}",
    ]
    for url in pages:
        html = page(admin_client, url)
        assert token.key not in html, url
        assert f"{token.key[:6]}…" in html, url


def test_drf_token_admin_is_gone(admin_client, token):
    response = admin_client.get("/admin/authtoken/tokenproxy/")
    assert token.key not in response.content.decode()
    assert response.status_code != 200


def test_staff_create_a_token_and_see_its_key_once(admin_client, user):
    response = admin_client.post(reverse("admin:study_apitoken_add"), {"user": user.pk}, follow=True)
    assert response.status_code == 200
    key = Token.objects.get(user=user).key
    assert response.content.decode().count(key) == 1  # the message after creating it
    assert key not in page(admin_client, reverse("admin:study_apitoken_changelist"))
    assert key not in page(admin_client, reverse("admin:index"))  # recent actions
    assert not LogEntry.objects.filter(object_repr__contains=key).exists()

    # A second token for the same user is a form error (one token per user).
    response = admin_client.post(reverse("admin:study_apitoken_add"), {"user": user.pk})
    assert response.status_code == 200 and response.context["adminform"].form.errors


def test_the_new_key_does_not_travel_in_a_cookie(admin_client, user):
    # Django's default message storage keeps a redirect's messages in a signed, not encrypted, cookie.
    response = admin_client.post(reverse("admin:study_apitoken_add"), {"user": user.pk})
    assert response.status_code == 302
    key = Token.objects.get(user=user).key
    cookie = response.cookies.get(CookieStorage.cookie_name)
    stored = CookieStorage(RequestFactory().get("/"))._decode(cookie.value) if cookie and cookie.value else []
    assert all(key not in str(message) for message in stored or [])
    assert admin_client.get(response["Location"]).content.decode().count(key) == 1  # still shown, once


def test_delete_revokes_the_token_without_showing_it(admin_client, token):
    response = admin_client.post(reverse("admin:study_apitoken_delete", args=[token.user_id]), {"post": "yes"},
                                 follow=True)
    assert response.status_code == 200 and token.key not in response.content.decode()
    assert not Token.objects.filter(key=token.key).exists()
    assert not LogEntry.objects.filter(object_repr__contains=token.key).exists()


def test_the_token_cannot_be_moved_to_another_user(admin_client, token, other_user):
    admin_client.post(reverse("admin:study_apitoken_change", args=[token.user_id]), {"user": other_user.pk})
    token.refresh_from_db()
    assert token.user_id != other_user.pk


@pytest.mark.parametrize("lookup", ["key__startswith", "pk__startswith", "key__regex", "key"])
def test_the_list_cannot_be_filtered_by_key(admin_client, token, lookup):
    """A filter on the key would tell it a character at a time (`?key__startswith=a`, `=ab`, …)."""
    url = reverse("admin:study_apitoken_changelist")
    value = token.key if lookup == "key" else f"^{token.key[:1]}" if lookup == "key__regex" else token.key[:1]
    response = admin_client.get(url, {lookup: value})
    assert response.status_code == 400


@pytest.mark.parametrize("lookup", ["auth_token__key__startswith", "auth_token__startswith", "auth_token__gt",
                                    "auth_token__key", "auth_token"])
def test_the_users_list_cannot_be_filtered_by_a_token_key(client, token, lookup):
    """Django allows a filter on a relation's own key without list_filter, and a token's key is its primary key: a
    staff user who may only view users read every key a character at a time (`startswith`) or by halving (`gt`)."""
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_user"))
    client.force_login(viewer)
    url = reverse("admin:auth_user_changelist")
    assert client.get(url, {"username": token.user.username}).status_code == 200  # filters as such still work
    value = token.key if lookup in {"auth_token__key", "auth_token"} else token.key[:1]
    response = client.get(url, {"username": token.user.username, lookup: value})
    assert response.status_code == 400 and token.key not in response.content.decode()


def test_no_list_of_the_site_can_be_filtered_by_a_token_key(admin_client, token):
    """Every model admin of the site, by the relations that reach a token (through its user or directly)."""
    from django.contrib.auth import get_user_model

    from studyserver.admin import _reaches_a_token

    checked = 0
    for model in admin.site._registry:
        paths = ["auth_token"] if model is get_user_model() else [
            f"{field.name}__auth_token" for field in model._meta.get_fields()
            if field.is_relation and field.related_model is get_user_model() and not field.auto_created]
        for path in paths:
            assert _reaches_a_token(model, f"{path}__key__startswith")
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
            assert admin_client.get(url, {f"{path}__startswith": token.key[:1]}).status_code == 400, (model, path)
            checked += 1
    assert checked >= 10  # the user list and every model with an owner


@pytest.mark.parametrize("query", [{"_popup": "1", "_to_field": "key"}, {"_popup": "1"}, {"_popup": "0"}])
def test_the_list_as_a_popup_does_not_hand_out_keys(client, token, query):
    """A popup's links carry each row's primary key for the opener, the key itself for a token: whoever could only
    view tokens read every whole key from `?_popup=1`."""
    from django.contrib.auth.models import Permission

    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client.force_login(viewer)
    url = reverse("admin:study_apitoken_changelist")
    assert token.key not in client.get(url).content.decode()
    response = client.get(url, query)
    assert response.status_code == 400 and token.key not in response.content.decode()


def test_the_delete_page_counts_the_token_it_removes(admin_client, token):
    """The proxy's pk is its user's id, not the key: counted through it, the summary found no token."""
    page = admin_client.get(reverse("admin:study_apitoken_delete", args=[token.user_id])).content.decode()
    assert "<li>API tokens: 1</li>" in page


@pytest.mark.parametrize("target", ["superuser", "staff"])
def test_only_a_superuser_makes_the_key_of_staff(client, admin_client, target):
    """A staff member who may only add tokens would otherwise hold a superuser's (or a colleague's) key, and with
    it their study data through the API."""
    from django.contrib.auth.models import Permission

    minter = UserFactory(is_staff=True)
    minter.user_permissions.add(Permission.objects.get(codename="add_apitoken"))
    client.force_login(minter)
    other = UserFactory(is_staff=True, is_superuser=target == "superuser")
    learner = UserFactory()
    add = reverse("admin:study_apitoken_add")

    response = client.post(add, {"user": other.pk})
    assert response.status_code == 200
    assert "Only a superuser can create the key" in str(response.context["adminform"].form.errors["user"])
    assert not Token.objects.filter(user=other).exists()

    assert client.post(add, {"user": learner.pk}).status_code == 302  # a learner's, as before
    assert client.post(add, {"user": minter.pk}).status_code == 302  # and one's own
    assert Token.objects.filter(user__in=[learner, minter]).count() == 2

    assert admin_client.post(add, {"user": other.pk}).status_code == 302  # a superuser makes anyone's
    assert Token.objects.filter(user=other).exists()
