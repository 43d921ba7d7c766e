"""A real Celery worker on Redis runs a task enqueued after commit, and it writes to PostgreSQL."""


import pytest
from django.db import transaction

from study.models import Document
from study.tasks import extract_document
from study.tests.factories import DocumentFactory
from studyserver.celery import enqueue_on_commit
from studyserver.testing import wait_for


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_enqueued_on_commit_runs_on_a_real_worker(redis_worker):
    with transaction.atomic():
        document = DocumentFactory(extract_status="pending")
        enqueue_on_commit(extract_document, document.pk)
        # Not sent before commit: the worker cannot see the row yet.
        assert Document.objects.get(pk=document.pk).extract_status == "pending"

    assert wait_for(lambda: Document.objects.get(pk=document.pk).extract_status != "pending")
    document.refresh_from_db()
    assert document.extracted_at is not None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_worker_leaves_eager_mode_and_joins_as_they_were(settings):
    from celery._state import task_join_will_block

    from studyserver.celery import app
    from studyserver.testing import running_worker, worker_broker_url

    settings.CELERY_TASK_ALWAYS_EAGER = False
    with running_worker(worker_broker_url()):
        assert app.conf.task_always_eager is False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert app.conf.task_always_eager is True  # read live from Django settings again, not pinned
    assert "task_always_eager" not in app.conf.changes
    assert task_join_will_block() is False


def _sessions_opened() -> int:
    """Connections ever opened to the test database (PostgreSQL counts them; a backend's count lands by its exit)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.worker
@pytest.mark.postgresql  # pg_stat_database
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("max_age", ["60", "0"])
def test_a_worker_keeps_its_database_connection_across_tasks_for_its_max_age(max_age):
    """Celery's Django fixup closed the connection around every task: a new PostgreSQL connection per task. Kept,
    it is still closed once older than DATABASE_CONN_MAX_AGE, as around a web request (0: after each task)."""
    from publishing.models import PublishOutbox
    from publishing.tasks import publish_sweep
    from studyserver.testing import broker_key_prefix, queued_messages, sending_to, worker_broker_url, worker_process

    url = worker_broker_url()
    tasks = 40
    with broker_key_prefix(url, "reuse") as prefix:
        with sending_to(url, prefix):
            for _ in range(tasks):
                publish_sweep.apply_async()
        before = _sessions_opened()
        with worker_process(url, prefix, DATABASE_CONN_MAX_AGE=max_age):
            assert wait_for(lambda: not queued_messages(url, prefix, "celery"), timeout=60)
        assert wait_for(lambda: _sessions_opened() > before, timeout=10)  # the worker's exit has been counted
        opened = _sessions_opened() - before
    assert not PublishOutbox.objects.exists()
    if max_age == "0":
        assert opened >= tasks, opened
    else:
        assert opened < tasks / 4, opened
