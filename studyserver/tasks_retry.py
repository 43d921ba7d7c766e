"""Which errors the project's Celery tasks retry with backoff: the one list both apps' tasks are given, and the
Task class that lets a database error no retry can cure fail at once."""

from celery import Task
from celery.utils.serialization import raise_with_context
from django.db import InterfaceError, OperationalError

from .errors import transient_database_error

# A database connection lost or refused (InterfaceError: psycopg's "connection already closed"), a statement the
# database failed (only a transient one is retried: TransientRetryTask), a network error or timeout (ExplainerDown
# and StorageUnavailable are ConnectionErrors).
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
# The retry options of a task that has no reason for others: up to five tries, 1 s to 5 minutes apart, jittered.
RETRY = {"autoretry_for": TRANSIENT_ERRORS, "retry_backoff": True, "retry_backoff_max": 300, "retry_jitter": True,
         "max_retries": 5}


def retried(exc: BaseException) -> bool:
    """Whether the project's tasks retry `exc` (autoretry_for TRANSIENT_ERRORS, through TransientRetryTask)."""
    if isinstance(exc, OperationalError):
        return transient_database_error(exc)
    return isinstance(exc, TRANSIENT_ERRORS)


class TransientRetryTask(Task):
    """The project's Task class (celery.py: `task_cls`; a task's own `base` must derive from it).

    Celery's `autoretry_for` names classes, and one class, OperationalError, holds a lost deadlock, a database that
    is away and a statement the database refuses each time it runs (program limit exceeded, SQLite's "no such
    table"). `autoretry_for` hands what it caught to `retry(exc=…)`: a database error that
    `transient_database_error` does not call transient is raised again there, and the task fails at once with it
    (logged as its failure) instead of running the same statement again five times over the next minutes."""

    def retry(self, args=None, kwargs=None, exc=None, throw=True, eta=None, countdown=None, max_retries=None,
              **options):
        if isinstance(exc, OperationalError) and not retried(exc):  # (an InterfaceError is retried)
            raise_with_context(exc)
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
