"""Two Celery queues: publish drains and sweeps on the default queue, slow work (OCR, explanations) on its own.

Messages are sent to real Redis under a key prefix of their own and read back from the queue's list; real
worker processes show that a `-Q celery` worker drains while slow work waits, and that a worker started
without -Q (the one-worker setup) consumes both queues.
"""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from publishing.models import Published, PublishOutbox
from publishing.tasks import publish_drain, publish_sweep
from study.models import Document
from study.tasks import (
    analyses_sweep,
    analyze_quiz_session,
    explain_question,
    explain_questions,
    explanations_sweep,
    extract_document,
    extracts_sweep,
    orphan_files_sweep,
)
from study.tests.factories import DocumentFactory, StudyTopicFactory
from studyserver.celery import app
from studyserver.heartbeat import worker_heartbeat
from studyserver.sessions import expired_sessions_sweep
from studyserver.testing import (
    broker_key_prefix,
    queued_messages,
    sending_to,
    wait_for,
    worker_broker_url,
    worker_process,
)

DEFAULT = "celery"  # Celery's own default name: messages queued before the split are still consumed
SLOW = settings.CELERY_SLOW_QUEUE

# What each task does decides its queue; a new task must be placed here deliberately.
ROUTED = {
    publish_drain: (DEFAULT, []),
    publish_sweep: (DEFAULT, []),
    analyses_sweep: (DEFAULT, []),
    extracts_sweep: (DEFAULT, []),  # only sends the extractions, which go to the slow queue
    explanations_sweep: (DEFAULT, []),  # only sends the explanations, which go to the slow queue
    explain_questions: (DEFAULT, [[1, 2]]),  # the fan-out only sends messages
    extract_document: (SLOW, [1]),
    explain_question: (SLOW, [1]),  # the explainer model, then card generation
    analyze_quiz_session: (SLOW, [1]),
    orphan_files_sweep: (SLOW, []),  # lists the whole file store
    expired_sessions_sweep: (DEFAULT, []),  # one DELETE
}


@pytest.fixture
def broker():
    """This xdist process's Redis database and a key prefix of this test's own: no worker listens there."""
    url = worker_broker_url()
    with broker_key_prefix(url, "queues") as prefix:
        yield url, prefix


def queued_tasks(broker, queue: str) -> list[str]:
    return [message["task"] for message in queued_messages(*broker, queue)]


def test_every_project_task_has_a_deliberate_queue():
    ours = {name for name in app.tasks if name.split(".")[0] in {"study", "publishing", "ingest", "studyserver"}}
    ours.remove(worker_heartbeat.name)  # sent to each queue by name (test_heartbeat.py)
    assert ours == {task.name for task in ROUTED}


def test_each_task_is_sent_to_its_queue_on_redis(broker):
    beat_options = {entry["task"]: entry["options"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    with sending_to(*broker):
        for task, (_queue, args) in ROUTED.items():
            task.apply_async(args=args, **beat_options.get(task.name, {}))  # the sweeps as beat sends them

    assert queued_tasks(broker, DEFAULT) == [task.name for task, (queue, _) in ROUTED.items() if queue == DEFAULT]
    assert queued_tasks(broker, SLOW) == [task.name for task, (queue, _) in ROUTED.items() if queue == SLOW]


def test_the_explanations_fan_out_sends_each_explanation_to_the_slow_queue(broker):
    with sending_to(*broker):
        assert explain_questions.run([11, 12]) == 2  # the body, as a default-queue worker runs it

    assert queued_messages(*broker, SLOW) == [
        {"task": explain_question.name, "args": [11], "kwargs": {}},
        {"task": explain_question.name, "args": [12], "kwargs": {}},
    ]
    assert queued_messages(*broker, DEFAULT) == []


def _routing_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup()\n"
        "from studyserver.celery import app\n"
        "print(app.amqp.router.route({}, 'study.tasks.extract_document')['queue'].name, sorted(app.amqp.queues))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings", "DEBUG": "true", **env},
    )


def test_the_slow_queue_is_named_by_celery_slow_queue():
    result = _routing_in_a_fresh_process(CELERY_SLOW_QUEUE="ocr")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ocr", "['celery',", "'ocr']"]


def test_a_slow_queue_named_like_the_default_queue_is_a_startup_error():
    """Both would be one queue again, and a `-Q celery` worker would run OCR in front of the drains."""
    result = _routing_in_a_fresh_process(CELERY_SLOW_QUEUE="celery")
    assert result.returncode != 0 and "CELERY_SLOW_QUEUE must differ" in result.stderr


def _published(topic) -> bool:
    return Published.objects.filter(kind="study_topic", source_id=topic.pk).exists()


def _drain_kick(broker, topic) -> None:
    PublishOutbox.objects.create(kind="study_topic", source_id=topic.pk)
    with sending_to(*broker):
        publish_drain.apply_async()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_default_queue_worker_drains_while_slow_work_waits_for_the_slow_worker(broker, settings):
    media = {"MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    document = DocumentFactory(extract_status="pending")
    first, second = StudyTopicFactory(), StudyTopicFactory()
    with sending_to(*broker):
        extract_document.apply_async(args=[document.pk])  # queued first: the OCR backlog
    _drain_kick(broker, first)

    with worker_process(*broker, "-Q", DEFAULT, **media):
        assert wait_for(lambda: _published(first), timeout=30)
        _drain_kick(broker, second)  # a second round trip: the worker polled its queues again meanwhile
        assert wait_for(lambda: _published(second), timeout=30)
        assert queued_tasks(broker, SLOW) == [extract_document.name]  # untouched, not even reserved
        assert Document.objects.get(pk=document.pk).extract_status == "pending"
        assert not PublishOutbox.objects.exists()

    with worker_process(*broker, "-Q", SLOW, **media):
        assert wait_for(lambda: Document.objects.get(pk=document.pk).extract_status == "done", timeout=30)
    assert queued_tasks(broker, SLOW) == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_without_queue_options_consumes_both_queues(broker, settings):
    document = DocumentFactory(extract_status="pending")
    topic = StudyTopicFactory()
    with sending_to(*broker):
        extract_document.apply_async(args=[document.pk])
    _drain_kick(broker, topic)

    with worker_process(*broker, MEDIA_ROOT=str(settings.MEDIA_ROOT)):
        assert wait_for(lambda: Document.objects.get(pk=document.pk).extract_status == "done", timeout=30)
        assert wait_for(lambda: _published(topic), timeout=30)
    assert queued_tasks(broker, SLOW) == queued_tasks(broker, DEFAULT) == []
