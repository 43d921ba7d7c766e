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
