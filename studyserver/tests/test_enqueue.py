"""enqueue_on_commit: sent only after commit, never on rollback, and a dead broker never breaks the write."""

import logging

import pytest
from django.db import transaction

from study.models import Document
from study.tasks import extract_document
from study.tests.factories import DocumentFactory
from studyserver.celery import enqueue_on_commit
from studyserver.testing import celery_conf


@pytest.fixture
def dead_broker(settings):
    with celery_conf(broker_url="redis://127.0.0.1:1/0", task_always_eager=False):  # nothing listens on port 1
        yield


@pytest.mark.django_db
def test_nothing_is_sent_before_commit_or_after_rollback(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        document = DocumentFactory()
        enqueue_on_commit(extract_document, document.pk)
    assert len(callbacks) == 1
    document.refresh_from_db()
    assert document.extract_status == "pending"  # captured, not run

    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue_on_commit(extract_document, document.pk)
            raise RuntimeError("roll back")
    assert callbacks == []


@pytest.mark.django_db(transaction=True)
def test_a_dead_broker_is_logged_and_the_change_is_kept(dead_broker, caplog):
    with caplog.at_level(logging.ERROR, logger="studyserver.celery"), transaction.atomic():
        document = DocumentFactory()
        enqueue_on_commit(extract_document, document.pk)
    assert Document.objects.filter(pk=document.pk, extract_status="pending").exists()
    assert any("could not enqueue study.tasks.extract_document" in r.getMessage() for r in caplog.records)
