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
