"""Expired admin sign-in sessions, removed daily.

Django's database session store keeps a row per sign-in until `manage.py clearsessions` runs; nothing else deletes an
expired one, so the `django_session` table of a long-running server only grows. Beat does the same removal once a day
(CELERY_BEAT_SCHEDULE "sessions-sweep")."""

from importlib import import_module

from celery import shared_task
from django.conf import settings

from .tasks_retry import RETRY


@shared_task(**RETRY, ignore_result=True, soft_time_limit=240, time_limit=300)
def expired_sessions_sweep() -> None:
    """Delete the sign-in sessions that have expired, as `clearsessions` does (one statement on the database store);
    a session still valid is kept."""
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
