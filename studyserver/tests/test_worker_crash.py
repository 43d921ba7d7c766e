"""A worker killed in the middle of a task: the task is delivered again and takes effect once.

Real worker processes on Redis (acks_late): the first is SIGKILLed while its task waits on a lock this
test holds (the publishing lock for a drain; a study session's row for an extraction, which fills the
session's OCR text after the document's); a second worker gets the unacknowledged message back after
the visibility timeout and does the work exactly once.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager

import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from publishing.models import Published, PublishOutbox
from publishing.services import PUBLISH_LOCK_KEY
from publishing.tasks import publish_drain
from study.models import Document, StudySession
from study.tasks import extract_document
from study.tests.factories import SessionAssetFactory, StudyTopicFactory
from studyserver.celery import app
from studyserver.testing import celery_conf, wait_for, worker_broker_url

VISIBILITY_TIMEOUT = 1


def _dsn() -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker_process(broker: str, prefix: str, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **extra_env,
        "DEBUG": "true",
        "DATABASE_URL": _dsn(),
        "CELERY_BROKER_URL": broker,
        "CELERY_BROKER_KEY_PREFIX": prefix,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "studyserver", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-mingle", "--without-gossip", "--without-heartbeat"],
        cwd=django_settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


class Crash:
    """Real worker processes on their own Redis key prefix: one killed in the middle of a task, one after it."""

    def __init__(self, **env: str) -> None:
        self.broker, self.prefix, self.env = worker_broker_url(), f"crash-{uuid.uuid4().hex}:", env

    def kill_mid_task(self, task, args: list, *, waiting: Callable[[], bool]) -> None:
        """Send `task`, wait until `waiting()` says it is stuck mid-way, then SIGKILL its worker."""
        first = start_worker_process(self.broker, self.prefix, **self.env)
        try:
            options = {**app.conf.broker_transport_options, "global_keyprefix": self.prefix}
            with celery_conf(broker_url=self.broker, task_always_eager=False, broker_transport_options=options):
                task.apply_async(args=args)
            assert wait_for(waiting, timeout=30)
        finally:
            first.kill()  # SIGKILL: no chance to acknowledge or clean up
            first.wait(timeout=10)

    @contextmanager
    def next_worker(self):
        """A new worker, which restores unacknowledged messages older than the visibility timeout on start."""
        time.sleep(VISIBILITY_TIMEOUT + 0.5)
        second = start_worker_process(self.broker, self.prefix, **self.env)
        try:
            yield
        finally:
            second.terminate()
            second.wait(timeout=20)

    def clean(self) -> None:
        with redis.Redis.from_url(self.broker) as client:
            for key in client.scan_iter(match=f"{self.prefix}*"):
                client.delete(key)


@pytest.fixture
def crash(settings):
    crash = Crash(MEDIA_ROOT=str(settings.MEDIA_ROOT))
    yield crash
    crash.clean()


def drain_is_waiting_on_the_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [PUBLISH_LOCK_KEY & 0xFFFFFFFF],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_drain_killed_mid_task_is_redelivered_and_publishes_once(crash):
    topic = StudyTopicFactory(name="가스기사 필기")
    PublishOutbox.objects.create(kind="study_topic", source_id=topic.pk)

    with psycopg.connect(_dsn(), autocommit=True) as lock_holder:
        lock_holder.execute("SELECT pg_advisory_lock(%s)", [PUBLISH_LOCK_KEY])
        crash.kill_mid_task(publish_drain, [], waiting=drain_is_waiting_on_the_lock)
        lock_holder.execute("SELECT pg_advisory_unlock(%s)", [PUBLISH_LOCK_KEY])

    # The killed drain left nothing behind: its transaction was rolled back with its connection.
    assert not Published.objects.filter(kind="study_topic", source_id=topic.pk).exists()
    assert PublishOutbox.objects.filter(kind="study_topic", source_id=topic.pk).exists()

    with crash.next_worker():
        assert wait_for(lambda: Published.objects.filter(kind="study_topic", source_id=topic.pk).exists(), 30)
        assert wait_for(lambda: not PublishOutbox.objects.exists(), 10)

    published = Published.objects.get(kind="study_topic", source_id=topic.pk)
    assert published.payload == {"name": "가스기사 필기", "study_type": "certification"}
    assert Published.objects.count() == 1


def extraction_is_waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query LIKE 'UPDATE \"study_studysession\"%%'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_extraction_killed_mid_task_is_redelivered_and_extracts_once(crash):
    asset = SessionAssetFactory()  # a text document linked to a session as its handwriting snapshot
    document, session = asset.document, asset.session

    with psycopg.connect(_dsn()) as lock_holder:
        lock_holder.execute("SELECT id FROM study_studysession WHERE id = %s FOR UPDATE", [session.pk])
        # killed mid-transaction: the document's new text was written but not committed
        crash.kill_mid_task(extract_document, [document.pk], waiting=extraction_is_waiting_on_a_lock)
        lock_holder.rollback()

    document.refresh_from_db()
    assert (document.extract_status, document.extracted_text, document.extracted_at) == ("pending", "", None)
    assert StudySession.objects.get(pk=session.pk).ocr_text == ""

    with crash.next_worker():
        assert wait_for(lambda: Document.objects.get(pk=document.pk).extract_status == "done", 30)

    document.refresh_from_db()
    assert document.extracted_text == "LNG is stored at -162 C."
    assert StudySession.objects.get(pk=session.pk).ocr_text == "LNG is stored at -162 C."
