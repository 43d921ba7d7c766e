"""manage.py ensure_admin."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


@pytest.mark.django_db
def test_ensure_admin_creates_a_superuser_once(monkeypatch, capsys):
    monkeypatch.setenv("DEMO_ADMIN_USER", "reviewer")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "s3cret-demo")
    call_command("ensure_admin")
    call_command("ensure_admin")
    users = get_user_model().objects.filter(username="reviewer")
    assert users.count() == 1
    admin = users.get()
    assert admin.is_staff and admin.is_superuser
    assert admin.check_password("s3cret-demo")
    assert "s3cret-demo" in capsys.readouterr().out


@pytest.mark.django_db
def test_ensure_admin_never_promotes_an_existing_ordinary_user(monkeypatch):
    from django.core.management.base import CommandError

    learner = get_user_model().objects.create_user("kid", password="kids-own-password")
    monkeypatch.setenv("DEMO_ADMIN_USER", "kid")
    with pytest.raises(CommandError, match="not a superuser"):
        call_command("ensure_admin")
    learner.refresh_from_db()
    assert not learner.is_staff and not learner.is_superuser


@pytest.mark.django_db
@pytest.mark.parametrize(("is_staff", "is_superuser"), [(True, False), (False, True)])
def test_ensure_admin_refuses_an_account_that_is_not_both_staff_and_superuser(monkeypatch, is_staff, is_superuser):
    """Staff alone may not see everything; a superuser who is not staff cannot sign in to the admin at all: either
    way "the admin user exists" would not be true."""
    from django.core.management.base import CommandError

    get_user_model().objects.create_user("half", password="pw", is_staff=is_staff, is_superuser=is_superuser)
    monkeypatch.setenv("DEMO_ADMIN_USER", "half")
    with pytest.raises(CommandError, match="not a superuser"):
        call_command("ensure_admin")


@pytest.mark.django_db
def test_blank_demo_credentials_mean_the_defaults(monkeypatch):
    """Before, an empty DEMO_ADMIN_USER made a superuser named "" and an empty password one without a password."""
    monkeypatch.setenv("DEMO_ADMIN_USER", "  ")
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "")
    call_command("ensure_admin")
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["admin"]
    assert get_user_model().objects.get().check_password("admin")
