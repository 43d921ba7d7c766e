"""A worker killed in the middle of a task: the task is delivered again and takes effect once.

Real worker processes on Redis (acks_late): the first is SIGKILLed in the middle of its task (a drain while
it waits on the publishing lock this test holds; an extraction in its slow part, which runs outside any
transaction: reading the document's file, a FIFO this test keeps open and silent); a second worker gets the
unacknowledged message back after the visibility timeout and does the work exactly once.
"""

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from publishing.models import Published, PublishOutbox
from publishing.services import PUBLISH_LOCK_KEY
from publishing.tasks import publish_drain
from study.models import Document, StudySession
from study.services.extraction import extract_lock_key
from study.tasks import extract_document
from study.tests.factories import SessionAssetFactory, StudyTopicFactory
from studyserver.testing import (
    advisory_lock_holders,
    backend_in_transaction,
    broker_key_prefix,
    counting_updates,
    sending_to,
    start_worker_process,
    wait_for,
    worker_broker_url,
    worker_database_url,
    worker_process,
)

VISIBILITY_TIMEOUT = 1


class Crash:
    """Real worker processes on their own Redis key prefix: one killed in the middle of a task, one after it."""

    def __init__(self, broker: str, prefix: str, **env: str) -> None:
        self.broker, self.prefix = broker, prefix
        self.env = {**env, "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}

    def kill_mid_task(self, task, args: list, *, waiting: Callable[[], bool]) -> None:
        """Send `task`, wait until `waiting()` says it is stuck mid-way, then SIGKILL its worker."""
        first = start_worker_process(self.broker, self.prefix, **self.env)
        try:
            with sending_to(self.broker, self.prefix):
                task.apply_async(args=args)
            assert wait_for(waiting, timeout=30)
        finally:
            first.kill()  # SIGKILL: no chance to acknowledge or clean up
            first.wait(timeout=10)

    @contextmanager
    def next_worker(self):
        """A new worker, which restores unacknowledged messages older than the visibility timeout on start."""
        time.sleep(VISIBILITY_TIMEOUT + 0.5)
        with worker_process(self.broker, self.prefix, **self.env):
            yield


@pytest.fixture
def crash(settings):
    broker = worker_broker_url()
    with broker_key_prefix(broker, "crash") as prefix:
        yield Crash(broker, prefix, MEDIA_ROOT=str(settings.MEDIA_ROOT))


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

    with psycopg.connect(worker_database_url(), autocommit=True) as lock_holder:
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


@pytest.mark.worker
@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_an_extraction_killed_mid_task_is_redelivered_and_extracts_once(crash):
    asset = SessionAssetFactory()  # a text document linked to a session as its handwriting snapshot
    document, session = asset.document, asset.session
    lock_key = extract_lock_key(document.pk)
    stored = Path(document.file.path)
    content = stored.read_bytes()
    stored.unlink()
    os.mkfifo(stored)  # reading it lasts until a writer writes and closes: the slow part, for as long as needed
    seen = {}

    def in_the_slow_part() -> bool:
        """The worker reads the file: opening the FIFO to write succeeds only once a reader has it open. The
        write end is kept open (and silent) until the kill, so the read never ends."""
        try:
            seen["writer"] = os.open(stored, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader yet
            return False
        seen["lock_holders"] = holders = advisory_lock_holders(lock_key)
        seen["in_transaction"] = [backend_in_transaction(pid) for pid in holders]
        try:
            with transaction.atomic():  # FOR UPDATE NOWAIT: fails if the worker holds any lock on the row
                Document.objects.select_for_update(nowait=True).get(pk=document.pk)
            seen["row_free"] = True
        except OperationalError:
            seen["row_free"] = False
        return True

    with counting_updates("study_document") as document_updates, counting_updates("study_studysession") as fills:
        try:
            crash.kill_mid_task(extract_document, [document.pk], waiting=in_the_slow_part)
        finally:
            if "writer" in seen:
                os.close(seen["writer"])
        # Killed while extracting: holding the document's extract lock, with no transaction and no row lock open.
        assert len(seen["lock_holders"]) == 1
        assert seen["in_transaction"] == [False]
        assert seen["row_free"]
        # Its lock went with its connection; it wrote nothing but the count of its run, which it left behind.
        assert wait_for(lambda: advisory_lock_holders(lock_key) == [], timeout=10)
        document.refresh_from_db()
        assert (document.extract_status, document.extracted_text, document.extracted_at) == ("pending", "", None)
        assert document.extract_attempts == 1
        assert StudySession.objects.get(pk=session.pk).ocr_text == ""
        assert (document_updates(), fills()) == (1, 0)

        stored.unlink()
        stored.write_bytes(content)
        with crash.next_worker():
            assert wait_for(lambda: Document.objects.get(pk=document.pk).extract_status == "done", 30)

        # The second run's count and one extraction recorded, one fill of the session's OCR text (rolled-back
        # attempts would count too).
        assert (document_updates(), fills()) == (3, 1)
    document.refresh_from_db()
    assert document.extracted_text == "LNG is stored at -162 C."
    assert document.extract_attempts == 0
    assert StudySession.objects.get(pk=session.pk).ocr_text == "LNG is stored at -162 C."
