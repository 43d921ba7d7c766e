"""The Celery app, configured from Django settings (namespace CELERY), and enqueue helpers."""

import logging
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")

app = Celery("studyserver")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Send `task` after the current transaction commits; a broker failure is logged, never raised.

    Work that must not be lost is recorded in the database first (outbox, a pending status)
    so a periodic sweep or a retry command can pick it up when a kick is lost.
    """
    from django.db import transaction

    def send() -> None:
        try:
            task.apply_async(args=args, kwargs=kwargs)
        except Exception:  # the broker may be down; the state in the DB survives
            logger.exception("could not enqueue %s%r", task.name, args)

    transaction.on_commit(send)
