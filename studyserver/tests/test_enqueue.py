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


@pytest.mark.django_db
def test_after_a_broker_that_hangs_failed_a_send_the_process_sends_nothing_for_a_while(silent_port, caplog):
    """A broker that accepts connections and never answers cost every commit's request its timeout, inside the
    request (~25 s the first time, 5 s after): a write kept was answered with gunicorn's 500. What is not sent is
    sent again by a sweep (here: the extraction of a document left pending)."""
    import time

    from studyserver.celery import BROKER_RETRY_SECONDS, broker_breaker, send_or_log

    documents = DocumentFactory.create_batch(3)
    with celery_conf(broker_url=f"redis://127.0.0.1:{silent_port}/0", task_always_eager=False):
        assert send_or_log(extract_document, documents[0].pk) is False  # waits for the timeout, then fails
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="studyserver.celery"):
            assert [send_or_log(extract_document, d.pk) for d in documents[1:]] == [False, False]
        assert time.monotonic() - started < 1  # not tried: no timeout paid
        assert "not sent: the broker failed less than 10 s ago" in caplog.text
        assert broker_breaker.down_until - time.monotonic() <= BROKER_RETRY_SECONDS
        broker_breaker.down_until = 0.0  # the while is over: tried (and failing) again
        assert send_or_log(extract_document, documents[1].pk) is False
        assert broker_breaker.skipping()


@pytest.mark.django_db
def test_a_task_that_fails_when_run_eagerly_does_not_stop_the_sends(monkeypatch):
    """Without a broker (the demo) a send runs the task: its own error is no broker failure."""
    from studyserver.celery import broker_breaker, send_or_log

    def broken(*args, **kwargs):
        raise RuntimeError("the task's own bug")

    monkeypatch.setattr(extract_document, "apply_async", broken)
    with celery_conf(task_always_eager=True):
        assert send_or_log(extract_document, 1) is False
    assert not broker_breaker.skipping()
