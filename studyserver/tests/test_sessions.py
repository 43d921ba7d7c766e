"""Expired admin sign-in sessions are deleted daily by beat, the valid ones kept."""

from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session

from studyserver.sessions import expired_sessions_sweep


def signed_in(expires_in: timedelta) -> str:
    store = SessionStore()
    store["_auth_user_id"] = "1"
    store.set_expiry(expires_in)
    store.create()
    return store.session_key


@pytest.mark.django_db
def test_the_sweep_deletes_expired_sessions_and_keeps_the_valid_ones():
    expired = {signed_in(timedelta(seconds=-1)), signed_in(timedelta(days=-30))}
    valid = {signed_in(timedelta(days=14)), signed_in(timedelta(seconds=60))}
    assert set(Session.objects.values_list("session_key", flat=True)) == expired | valid

    expired_sessions_sweep.apply().get()

    assert set(Session.objects.values_list("session_key", flat=True)) == valid


@pytest.mark.django_db
def test_an_admin_sign_in_left_to_expire_is_swept(client, django_user_model, settings):
    """The row an actual sign-in writes (the admin's session) goes once it has expired."""
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-long-enough-1")
    client.force_login(admin)
    signed_in_for = timedelta(seconds=settings.SESSION_COOKIE_AGE + 1)
    Session.objects.update(expire_date=Session.objects.get().expire_date - signed_in_for)

    expired_sessions_sweep.apply().get()

    assert not Session.objects.exists()


def test_beat_sweeps_sessions_daily(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["sessions-sweep"]
    assert entry["task"] == expired_sessions_sweep.name
    assert entry["schedule"] == crontab(hour=4, minute=47)  # a time of day: a daily restart of beat does not skip it
