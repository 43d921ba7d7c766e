"""The Celery app, configured from Django settings (namespace CELERY), and enqueue helpers."""

import logging
import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready

from .breakers import Breaker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")

# Every task derives from TransientRetryTask: its autoretry retries only a database error that may go away.
app = Celery("studyserver", task_cls="studyserver.tasks_retry:TransientRetryTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@worker_ready.connect
def report_configuration_errors(**kwargs) -> None:
    """A worker started on its own runs no `manage.py check`: it logs what the Celery checks find (study.E001:
    a visibility timeout that would hand a running task to a second worker)."""
    from django.core import checks

    for message in checks.run_checks(tags=["celery"]):
        logger.error("%s", message)


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(sender=None, **kwargs) -> None:
    """Around each task a worker runs, close a database connection that is broken or older than
    DATABASE_CONN_MAX_AGE (Django does so around each request; CELERY_DB_REUSE_MAX keeps the others open)."""
    if sender is None or getattr(sender.request, "is_eager", False):  # run inside the caller's request: not ours
        return
    from django.db import close_old_connections

    close_old_connections()


# Once a send has failed on the broker, a process sends nothing for this long: a broker that hangs costs a send
# ~25 s the first time (kombu reconnects, redis-py retries its timeouts) and 5 s each after, inside the request that
# committed, where gunicorn's 30 s timeout answered a kept write with its 500. What is not sent is sent by a sweep:
# the outbox, pending extractions and analyses, explanations missing after a miss.
BROKER_RETRY_SECONDS = 10.0
broker_breaker = Breaker(BROKER_RETRY_SECONDS)


def send_or_log(task, *args, **kwargs) -> bool:
    """Send `task` now; a broker failure is logged, never raised. Whether it was sent. For BROKER_RETRY_SECONDS
    after a failure nothing is tried (broker_breaker).

    Work that must not be lost is recorded in the database first (outbox, a pending status)
    so a periodic sweep or a retry command can pick it up when a send is lost.
    """
    if broker_breaker.skipping():
        logger.warning("%s%r not sent: the broker failed less than %.0f s ago (a sweep sends it later)", task.name,
                       args, BROKER_RETRY_SECONDS)
        return False
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception:  # the broker may be down; the state in the DB survives
        if not task.app.conf.task_always_eager:  # (eagerly, the task itself raised: the broker is not the cause)
            broker_breaker.failed()
        logger.exception("could not enqueue %s%r", task.name, args)
        return False
    return True


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Send `task` after the current transaction commits (send_or_log)."""
    from django.db import transaction

    transaction.on_commit(lambda: send_or_log(task, *args, **kwargs))
