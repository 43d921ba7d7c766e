"""Faults: the broker down at commit, a task dying half-way, the database failing in an upload or an ingest, the file
store failing under an upload or a download.

Database faults are real PostgreSQL errors raised by a trigger installed for the test (no mocks):
the code under test meets exactly what a failing statement would give it.
"""

import io
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import override_settings
from PIL import Image

from publishing.models import Published, PublishOutbox
from publishing.services import publish_sources
from publishing.tasks import publish_drain, publish_sweep
from study import models as m
from study.tasks import extract_document
from study.tests import factories as f
from studyserver.celery import app
from studyserver.testing import celery_conf, failing, failing_statement, running_worker, stored_files, wait_for

LIVE_BROKER = "redis://127.0.0.1:6379/7"
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1
VIEWER_TOKEN = "faults-viewer-token-0123456789"


# --- (a) the broker is down when a change commits -------------------------------------------


@contextmanager
def dead_broker():
    """The app sends to a broker nobody listens on, as when Redis is down at commit time."""
    with celery_conf(broker_url=DEAD_BROKER, task_always_eager=False):
        yield


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_change_committed_while_the_broker_is_down_is_published_by_the_sweep(api_client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with dead_broker():
        response = api_client.post("/api/study-topics", {"name": "가스기사 필기"}, format="json")

    assert response.status_code == 201  # the broker failure never reaches the user
    topic_id = response.json()["id"]
    assert m.StudyTopic.objects.filter(pk=topic_id).exists()  # the change is kept
    assert PublishOutbox.objects.filter(kind="study_topic", source_id=topic_id).exists()  # the request waits
    assert not Published.objects.filter(kind="study_topic", source_id=topic_id).exists()

    with running_worker(LIVE_BROKER):  # the broker is back
        publish_sweep.apply_async()  # what beat sends every PUBLISH_SWEEP_SECONDS
        assert wait_for(lambda: Published.objects.filter(kind="study_topic", source_id=topic_id).exists())
        assert wait_for(lambda: not PublishOutbox.objects.exists())

    published = Published.objects.get(kind="study_topic", source_id=topic_id)
    assert published.payload == {"name": "가스기사 필기", "study_type": "certification"}
    assert published.deleted is False


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_while_the_broker_never_answers_is_kept_for_the_sweep(api_client, settings, silent_port):
    """A broker that accepts connections and never answers (a hung Redis) made the request wait for good."""
    settings.STUDY_PUBLISH_ENABLED = True
    with celery_conf(broker_url=f"redis://127.0.0.1:{silent_port}/0", task_always_eager=False):
        response = api_client.post("/api/study-topics", {"name": "가스기사 필기"}, format="json")
    assert response.status_code == 201
    assert PublishOutbox.objects.filter(kind="study_topic", source_id=response.json()["id"]).exists()


# --- (b) a worker dies in the middle of a drain or an extract ------------------------------------


def test_tasks_are_acknowledged_late_and_redelivered_when_the_worker_is_lost():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    for task in (publish_drain, publish_sweep, extract_document):
        assert task.acks_late is True
        assert task.reject_on_worker_lost in (True, None)  # None: the app-wide setting applies


@pytest.mark.postgresql
@pytest.mark.django_db
def test_a_drain_that_dies_half_way_leaves_the_outbox_and_a_rerun_publishes_once():
    topic = f.StudyTopicFactory()
    questions = [f.QuestionFactory(study_topic=topic) for _ in range(3)]
    PublishOutbox.objects.bulk_create(
        [PublishOutbox(kind="study_topic", source_id=topic.pk)]
        + [PublishOutbox(kind="study_question", source_id=q.pk) for q in questions]
    )

    # The drain projects and upserts, then dies as it deletes its claimed outbox rows.
    with failing("publishing_publishoutbox", "DELETE"):
        result = publish_drain.apply()
    assert result.failed()
    assert PublishOutbox.objects.count() == 4  # the claim is released with the transaction
    assert not Published.objects.exists()  # nothing half-published

    rerun = publish_drain.apply()  # redelivered: runs again from the start
    assert rerun.successful()
    assert rerun.result == 4
    assert not PublishOutbox.objects.exists()
    first = {(p.kind, p.source_id): (p.pub_id, p.seq) for p in Published.objects.all()}
    assert len(first) == 4

    # At-least-once delivery may run it yet again, with the same requests: no double effect.
    PublishOutbox.objects.bulk_create([PublishOutbox(kind="study_question", source_id=q.pk) for q in questions])
    assert publish_drain.apply().successful()
    assert {(p.kind, p.source_id): (p.pub_id, p.seq) for p in Published.objects.all()} == first


@pytest.mark.postgresql
@pytest.mark.django_db
def test_an_extract_that_dies_half_way_leaves_the_document_pending_and_a_rerun_fills_it_once():
    user = f.UserFactory()
    document = f.DocumentFactory(user=user, extract_status="pending")
    session = f.StudySessionFactory(user=user)
    f.SessionAssetFactory(session=session, document=document, asset_type="handwriting_png", role="answer")

    # The text is extracted and saved, then filling the session's ocr_text fails.
    with failing("study_studysession", "UPDATE"):
        result = extract_document.apply(args=[document.pk])
    assert result.failed()
    document.refresh_from_db()
    session.refresh_from_db()
    assert document.extract_status == "pending"  # not marked done with half the work
    assert document.extracted_text == ""
    assert session.ocr_text == ""

    assert extract_document.apply(args=[document.pk]).result == "done"
    assert extract_document.apply(args=[document.pk]).result == "not_pending"  # a duplicate delivery: no-op
    document.refresh_from_db()
    session.refresh_from_db()
    assert document.extract_status == "done"
    assert "162" in document.extracted_text
    assert session.ocr_text == document.extracted_text


# --- (c) the database raises in the middle of an upload or an ingest -----------------------------


@pytest.mark.postgresql
@pytest.mark.django_db
def test_a_database_failure_while_linking_an_upload_leaves_no_row_and_no_file(api_client, user, _isolated_media):
    topic = f.StudyTopicFactory(user=user)
    api_client.raise_request_exception = False
    upload = SimpleUploadedFile("notes.txt", b"LNG is stored at -162 C.", content_type="text/plain")
    with failing("study_topicdocument"):
        response = api_client.post("/api/documents", {"file": upload, "study_topic_id": topic.pk}, format="multipart")

    assert response.status_code >= 500
    assert not m.Document.objects.exists()  # the row inserted before the failure is rolled back
    assert not m.TopicDocument.objects.exists()
    assert stored_files(_isolated_media) == []  # and the file written before it is removed

    upload.seek(0)
    retry = api_client.post("/api/documents", {"file": upload, "study_topic_id": topic.pk}, format="multipart")
    assert retry.status_code == 201
    assert len(stored_files(_isolated_media)) == 1


@pytest.mark.postgresql
@pytest.mark.django_db
def test_a_database_failure_while_linking_a_snapshot_leaves_no_document_and_no_file(api_client, user,
                                                                                    _isolated_media):
    session = f.StudySessionFactory(user=user)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    api_client.raise_request_exception = False
    with failing("study_sessionasset"):
        response = api_client.post(f"/api/study-sessions/{session.pk}/snapshot",
                                   {"file": SimpleUploadedFile("s.png", buffer.getvalue(), "image/png")},
                                   format="multipart")
    assert response.status_code >= 500
    assert not m.Document.objects.exists()
    assert not m.SessionAsset.objects.exists()
    assert stored_files(_isolated_media) == []


@pytest.fixture
def viewer(settings, client):
    settings.VIEWER_SYNC_TOKEN = VIEWER_TOKEN
    # The throttle counters live in the shared cache; other tests' viewer requests must not count here.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "viewer": "100000/min"}}
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {VIEWER_TOKEN}"
    client.raise_request_exception = False
    return client


@pytest.mark.postgresql
@pytest.mark.django_db
def test_a_database_failure_in_the_middle_of_an_ingest_writes_nothing_and_a_retry_ingests_once(viewer, user):
    topic = f.StudyTopicFactory(user=user)
    questions = [f.QuestionFactory(study_topic=topic, correct_choice=1) for _ in range(3)]
    with transaction.atomic():
        publish_sources(kind_ids={"study_question": [q.pk for q in questions]})
    pub_ids = dict(Published.objects.filter(kind="study_question").values_list("source_id", "pub_id"))
    body = {"client_session_uuid": "offline-42", "attempts": [
        {"question_pub_id": pub_ids[q.pk], "selected_choice": 1 if i else 2} for i, q in enumerate(questions)]}
    outbox_before = PublishOutbox.objects.count()

    # The session and its attempts are written, then finalize fails on the progress rows.
    with failing("study_questionprogress"):
        response = viewer.post("/ingest/study/attempts", body, content_type="application/json")
    assert response.status_code >= 500
    assert not m.QuizSession.objects.filter(client_session_uuid="offline-42").exists()
    assert not m.QuestionAttempt.objects.exists()
    assert not m.QuestionProgress.objects.exists()
    assert PublishOutbox.objects.count() == outbox_before

    retry = viewer.post("/ingest/study/attempts", body, content_type="application/json")
    assert retry.status_code == 200, retry.content
    assert retry.json()["status"] == "ingested"
    assert retry.json()["sessions"][0]["correct"] == 2
    repeat = viewer.post("/ingest/study/attempts", body, content_type="application/json")
    assert repeat.json()["status"] == "already_ingested"
    assert m.QuestionAttempt.objects.count() == 3
    assert m.QuestionProgress.objects.count() == 3


# --- (d) the database or the file store fails under a request: 503, nothing kept, a retry goes through ----------


def assert_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response.json()["error_code"] == "unavailable"
    assert response["Retry-After"] == "5"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # a read runs in autocommit, outside any transaction the test could hold
def test_a_database_failure_under_a_read_is_503_with_retry_after(api_client, user):
    f.StudyTopicFactory(user=user)
    with failing_statement('FROM "study_studytopic"'):
        assert_unavailable(api_client.get("/api/study-topics"))
    assert api_client.get("/api/study-topics").json()["count"] == 1


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # the write commits, as in production
def test_a_quiz_start_whose_body_cannot_be_read_keeps_no_session(api_client, user):
    topic = f.StudyTopicFactory(user=user)
    f.QuestionFactory.create_batch(3, study_topic=topic)
    with failing_statement('FROM "study_question"', after='INSERT INTO "study_quizsession"'):
        assert_unavailable(api_client.post("/api/quiz-sessions", {"study_topic_id": topic.pk}, format="json"))
    assert not m.QuizSession.objects.exists()  # else the retry would meet its own session: 409 quiz_in_progress

    retry = api_client.post("/api/quiz-sessions", {"study_topic_id": topic.pk}, format="json")
    assert retry.status_code == 201, retry.content
    assert len(retry.json()["questions"]) == 3


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # the write commits, as in production
def test_an_abandon_whose_body_cannot_be_read_keeps_the_session_in_progress(api_client, user):
    session = f.QuizSessionFactory(user=user, study_topic=f.StudyTopicFactory(user=user))
    url = f"/api/quiz-sessions/{session.pk}/abandon"
    with failing_statement('FROM "study_quizsession"', after='UPDATE "study_quizsession"'):
        assert_unavailable(api_client.post(url))
    session.refresh_from_db()
    assert session.status == "in_progress"

    retry = api_client.post(url)
    assert retry.status_code == 200 and retry.json()["status"] == "abandoned"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # the write commits, as in production
def test_a_card_whose_body_cannot_be_read_is_not_kept(api_client, user):
    body = {"format": "qa", "cue": "LNG boils at", "fact": "-162 C"}
    with failing_statement('"study_cardevidence"', after='INSERT INTO "study_memocard"'):
        assert_unavailable(api_client.post("/api/study-cards", body, format="json"))
    assert not m.MemoCard.objects.exists()  # else the retry would be 409 duplicate_card, the id never learnt
    assert not PublishOutbox.objects.exists()

    retry = api_client.post("/api/study-cards", body, format="json")
    assert retry.status_code == 201, retry.content


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # the write commits, as in production
def test_an_ingest_whose_answer_cannot_be_read_keeps_nothing(viewer, user):
    topic = f.StudyTopicFactory(user=user)
    questions = [f.QuestionFactory(study_topic=topic, correct_choice=1) for _ in range(2)]
    with transaction.atomic():
        publish_sources(kind_ids={"study_topic": [topic.pk], "study_question": [q.pk for q in questions]})
    pub_ids = dict(Published.objects.filter(kind="study_question").values_list("source_id", "pub_id"))
    body = {"client_session_uuid": "offline-7", "attempts": [
        {"question_pub_id": pub_ids[q.pk], "selected_choice": 1} for q in questions]}

    with failing_statement('FROM "publishing_published"', after='INSERT INTO "study_questionattempt"'):
        assert_unavailable(viewer.post("/ingest/study/attempts", body, content_type="application/json"))
    assert not m.QuizSession.objects.exists()
    assert not m.QuestionAttempt.objects.exists()

    retry = viewer.post("/ingest/study/attempts", body, content_type="application/json")
    assert retry.status_code == 200 and retry.json()["status"] == "ingested", retry.content
    assert retry.json()["sessions"][0]["topic_pub_id"] == Published.objects.get(kind="study_topic").pub_id


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/documents", "snapshot"])
def test_a_file_store_failure_is_503_and_leaves_no_file_and_no_row(api_client, user, _isolated_media, monkeypatch,
                                                                   path):
    """The disk fills half-way through the write: what was written goes, the client may retry."""
    from django.core.files.storage import FileSystemStorage

    real_save = FileSystemStorage._save

    def disk_full(self, name, content):
        real_save(self, name, content)  # the file exists (its first bytes, say), then the write fails
        raise OSError(28, "No space left on device")

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buffer, format="PNG")
    if path == "snapshot":
        path = f"/api/study-sessions/{f.StudySessionFactory(user=user).pk}/snapshot"
    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    response = api_client.post(path, {"file": SimpleUploadedFile("s.png", buffer.getvalue(), "image/png")},
                               format="multipart")

    assert_unavailable(response)
    assert stored_files(_isolated_media) == []
    assert not m.Document.objects.exists()
    monkeypatch.setattr(FileSystemStorage, "_save", real_save)
    retry = api_client.post(path, {"file": SimpleUploadedFile("s.png", buffer.getvalue(), "image/png")},
                            format="multipart")
    assert retry.status_code == 201, retry.content
    assert len(stored_files(_isolated_media)) == 1


@pytest.mark.postgresql
@pytest.mark.django_db
def test_a_cleanup_that_fails_too_leaves_the_first_failure_answered(api_client, user, _isolated_media,
                                                                    monkeypatch, caplog):
    """The row's insert fails and then the file's delete does as well: the database failure is what the client
    hears (503, not a 500 from the delete), and the log names the file left for the orphan sweep."""
    from django.core.files.storage import FileSystemStorage

    def broken_delete(self, name):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(FileSystemStorage, "delete", broken_delete)
    upload = SimpleUploadedFile("notes.txt", b"LNG is stored at -162 C.", content_type="text/plain")
    with failing("study_document", errcode="57014"):
        assert_unavailable(api_client.post("/api/documents", {"file": upload}, format="multipart"))
    assert not m.Document.objects.exists()
    [left] = stored_files(_isolated_media)
    assert any(left.name in record.getMessage() and "sweep_orphan_files" in record.getMessage()
               for record in caplog.records)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("sqlstate", "status"), [("08006", 503), ("53100", 503), ("57P01", 503), ("54000", 500),
                                                  ("42P01", 500)])
def test_only_a_database_that_is_away_or_busy_is_503(api_client, user, sqlstate, status):
    """Connection lost, disk full, shutdown: retry later. A statement too complex or a missing table is a bug a
    retry cannot cure: it stays a 500, not a 503 that tells clients to retry forever."""
    api_client.raise_request_exception = False
    with failing_statement('FROM "study_studytopic"', errcode=sqlstate):
        response = api_client.get("/api/study-topics")
    assert response.status_code == status, response.content


def test_sqlite_reports_a_busy_or_full_database_as_unavailable_and_a_missing_table_as_a_bug():
    import sqlite3

    from studyserver.errors import backend_unavailable
    from studyserver.testing import sqlite_operational_error as django_error

    assert backend_unavailable(django_error("database is locked", sqlite3.SQLITE_BUSY))
    assert backend_unavailable(django_error("database or disk is full", sqlite3.SQLITE_FULL))
    assert backend_unavailable(django_error("disk I/O error", 266))  # SQLITE_IOERR_READ: an extended code
    assert not backend_unavailable(django_error("no such table: authtoken_token", sqlite3.SQLITE_ERROR))


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # the admin reads in autocommit
def test_a_database_away_under_an_admin_page_is_503_with_retry_after(admin_client):
    admin_client.raise_request_exception = False
    with failing_statement('FROM "study_studytopic"', errcode="08006"):
        response = admin_client.get("/admin/study/studytopic/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert b"try again" in response.content
    with failing_statement('FROM "study_studytopic"', errcode="54000"):  # a statement's own error: a bug, 500
        assert admin_client.get("/admin/study/studytopic/").status_code == 500


# --- (e) the file store fails under a download: 503 before any byte is sent; a missing file stays 404 ----------


_opened: list = []  # every file a FailingStorage opened in this test


class FetchedOnFirstAccess(File):
    """A stored file whose content is fetched on its first read, seek or tell, as django-storages' S3File downloads
    its object then (the HEAD of its open succeeded); the fetch fails with `error`."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name, self.error, self._closed = name, error, False

    @property
    def file(self):
        raise self.error

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True


class FailingStorage(FileSystemStorage):
    """The test's media root, failing with `error` where `fails_at` says: the open, the size, or the first access
    to the content (S3's fetch). The fault injected; the files it opened are kept in `_opened`."""

    def __init__(self, *, fails_at: str, error: Exception, **kwargs) -> None:
        super().__init__(**kwargs)
        self.fails_at, self.error = fails_at, error

    def _open(self, name, mode="rb"):
        if self.fails_at == "open":
            raise self.error
        opened = FetchedOnFirstAccess(name, self.error) if self.fails_at == "fetch" else super()._open(name, mode)
        _opened.append(opened)
        return opened

    def size(self, name):
        if self.fails_at == "size":
            raise self.error
        return super().size(name)


def s3_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@contextmanager
def failing_file_store(fails_at: str, error: Exception):
    """The default storage fails as FailingStorage says while the block runs; every file it opened is closed at
    the end."""
    _opened.clear()
    failing = {"BACKEND": f"{__name__}.FailingStorage", "OPTIONS": {"fails_at": fails_at, "error": error}}
    with override_settings(STORAGES={**django_settings.STORAGES, "default": failing}):
        yield
    assert all(handle.closed for handle in _opened), "a file opened for the download was left open"


ENDPOINT = "http://minio:9000/study/documents/2026/11/x.txt"


@pytest.mark.django_db
@pytest.mark.parametrize("range_header", [None, "bytes=0-9"])
@pytest.mark.parametrize(("fails_at", "error"), [
    ("open", PermissionError(13, "Permission denied")),  # was a 404 "missing": the file is there
    ("open", OSError(5, "Input/output error")),
    ("open", EndpointConnectionError(endpoint_url=ENDPOINT)),  # S3 unreachable (not an OSError)
    ("open", s3_error(503, "SlowDown")),
    ("open", s3_error(403, "AccessDenied")),  # the bucket's policy or the keys changed: the store refuses
    ("size", OSError(5, "Input/output error")),  # opened, then failed: the handle must not leak
    ("fetch", ReadTimeoutError(endpoint_url=ENDPOINT)),  # S3's GET times out after its HEAD succeeded
], ids=["permission", "eio", "s3-unreachable", "s3-slowdown", "s3-denied", "size-eio", "s3-fetch-timeout"])
def test_a_file_store_failure_under_a_download_is_503_and_closes_the_file(api_client, user, fails_at, error,
                                                                          range_header):
    document = f.DocumentFactory(user=user)
    headers = {"HTTP_RANGE": range_header} if range_header else {}
    with failing_file_store(fails_at, error):
        response = api_client.get(f"/api/documents/{document.pk}/download", **headers)
        assert_unavailable(response)

    retry = api_client.get(f"/api/documents/{document.pk}/download", **headers)  # the store is back
    assert retry.status_code == (206 if range_header else 200)
    assert b"".join(retry.streaming_content) == b"LNG is stored at -162 C."[:10 if range_header else None]


@pytest.mark.django_db
def test_an_object_gone_from_s3_after_its_head_is_404_not_found_as_a_missing_file(api_client, user):
    """A file missing at the open is 404 (study/tests/api/test_documents.py; django-storages turns S3's 404 there
    into FileNotFoundError); S3 answers 404 to the GET too when the object went after the open's HEAD."""
    document = f.DocumentFactory(user=user)
    with failing_file_store("fetch", s3_error(404, "NoSuchKey")):
        response = api_client.get(f"/api/documents/{document.pk}/download")
    assert response.status_code == 404, response.content
    assert response.json() == {"error_code": "not_found", "detail": "The stored file is missing."}
    assert "Retry-After" not in response


@pytest.mark.django_db
def test_a_missing_bucket_is_a_broken_store_not_a_missing_file(api_client, user):
    """S3 answers 404 for a bucket that is gone or misnamed too: every download would have said its file was
    missing, where the store needs mending and the request a retry."""
    document = f.DocumentFactory(user=user)
    with failing_file_store("fetch", s3_error(404, "NoSuchBucket")):
        response = api_client.get(f"/api/documents/{document.pk}/download")
    assert_unavailable(response)
