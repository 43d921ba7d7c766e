"""Writes to a topic or session racing its delete: 200/201 or 404, never a 500 or a foreign-key 409.

Each race is forced into one order: one side holds its transaction open until the other is waiting on
its locks (or has finished without waiting), so the outcome does not depend on thread timing.
"""

import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection, transaction
from PIL import Image

from study.api import sessions as session_views
from study.api import topics as topic_views
from study.models import Document, SessionAsset, StudySession, StudyTopic
from study.services.sessions import session_asset_add, session_delete
from study.services.topics import topic_delete, topic_get_live
from study.tests import factories as f
from studyserver.testing import blocking_another_connection, run_concurrently, wait_for, while_holding

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]  # row locks and races

WAIT = 10.0


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (16, 8), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def _racing_after(module, service: str, *, then: Callable[[object], object], monkeypatch) -> list:
    """Call `then(service's result)` in another thread once the view's call of `service` returns; the view
    goes on when `then` waits on its locks or finishes. Results: [`then`'s result, the view's response]."""
    real = getattr(module, service)
    returned, finished = threading.Event(), threading.Event()
    result: list = []

    def service_then_wait(**kwargs):
        result.append(real(**kwargs))
        returned.set()
        wait_for(lambda: finished.is_set() or blocking_another_connection(), timeout=WAIT)
        return result[0]

    def other():
        try:
            returned.wait(WAIT)
            return then(result[0])
        finally:
            finished.set()

    monkeypatch.setattr(module, service, service_then_wait)
    return other


@contextmanager
def paused(table: str, event: str, seconds: float) -> Iterator[None]:
    """Every `event` statement on `table` sleeps `seconds` first, before touching (or locking) any row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION test_pause() RETURNS trigger AS $$ BEGIN "
            "PERFORM pg_sleep(TG_ARGV[0]::float); RETURN NULL; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER test_pause BEFORE {event} ON {table} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION test_pause('{seconds}')"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS test_pause ON {table}")


def _someone_paused() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event = 'PgSleep')"
        )
        return cursor.fetchone()[0]


# Topics (soft delete)


def test_topic_patch_waiting_on_a_delete_is_404_and_changes_nothing(client_for):
    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user, name="before")
    response = while_holding(
        lambda: topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)),
        then=lambda: client_for(user).patch(f"/api/study-topics/{topic.id}", {"name": "after"}, format="json"),
    )
    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "not_found"
    topic.refresh_from_db()
    assert topic.name == "before" and topic.deleted_at is not None


def test_topic_delete_right_after_a_patch_waits_for_its_body(client_for, monkeypatch):
    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user, name="before")
    client = client_for(user)
    delete = _racing_after(
        topic_views.topic_services,
        "topic_update",
        then=lambda _: client_for(user).delete(f"/api/study-topics/{topic.id}"),
        monkeypatch=monkeypatch,
    )
    deleted, patched = run_concurrently(
        delete, lambda: client.patch(f"/api/study-topics/{topic.id}", {"name": "after"}, format="json")
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["name"] == "after"
    assert deleted.status_code == 204
    topic.refresh_from_db()
    assert topic.name == "after" and topic.deleted_at is not None


def test_topic_delete_during_its_create_is_404(client_for, monkeypatch):
    user = f.UserFactory()
    client = client_for(user)
    delete = _racing_after(
        topic_views.topic_services,
        "topic_create",
        then=lambda topic: client_for(user).delete(f"/api/study-topics/{topic.id}"),
        monkeypatch=monkeypatch,
    )
    deleted, created = run_concurrently(
        delete, lambda: client.post("/api/study-topics", {"name": "new"}, format="json")
    )
    assert created.status_code == 201, created.content
    assert deleted.status_code == 404
    assert StudyTopic.objects.live().filter(pk=created.json()["id"]).exists()


# Sessions (hard delete)


def test_session_patch_waiting_on_a_delete_is_404(client_for):
    user = f.UserFactory()
    session = f.StudySessionFactory(user=user)
    response = while_holding(
        lambda: session_delete(session=StudySession.objects.get(pk=session.pk)),
        then=lambda: client_for(user).patch(f"/api/study-sessions/{session.id}", {"topic": "t"}, format="json"),
    )
    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "not_found"
    assert not StudySession.objects.filter(pk=session.pk).exists()


def test_session_delete_right_after_a_patch_waits_for_its_body(client_for, monkeypatch):
    user = f.UserFactory()
    session = f.StudySessionFactory(user=user, topic="before")
    client = client_for(user)
    delete = _racing_after(
        session_views.session_services,
        "session_update",
        then=lambda _: client_for(user).delete(f"/api/study-sessions/{session.id}"),
        monkeypatch=monkeypatch,
    )
    deleted, patched = run_concurrently(
        delete, lambda: client.patch(f"/api/study-sessions/{session.id}", {"topic": "after"}, format="json")
    )
    assert patched.status_code == 200, patched.content
    assert patched.json()["topic"] == "after"
    assert deleted.status_code == 204
    assert not StudySession.objects.filter(pk=session.pk).exists()


def test_session_delete_during_its_create_is_404(client_for, monkeypatch):
    user = f.UserFactory()
    client = client_for(user)
    delete = _racing_after(
        session_views.session_services,
        "session_create",
        then=lambda s: client_for(user).delete(f"/api/study-sessions/{s.id}"),
        monkeypatch=monkeypatch,
    )
    deleted, created = run_concurrently(delete, lambda: client.post("/api/study-sessions", {}, format="json"))
    assert created.status_code == 201, created.content
    assert deleted.status_code == 404
    assert StudySession.objects.filter(pk=created.json()["id"]).exists()


# Assets of a session being deleted


def test_asset_add_waiting_on_a_delete_is_404(client_for):
    user = f.UserFactory()
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    response = while_holding(
        lambda: session_delete(session=StudySession.objects.get(pk=session.pk)),
        then=lambda: client_for(user).post(
            f"/api/study-sessions/{session.id}/assets", {"document_id": doc.id, "asset_type": "audio"}, format="json"
        ),
    )
    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "not_found"
    assert not SessionAsset.objects.exists()


def test_delete_waiting_on_an_asset_add_removes_it(client_for):
    user = f.UserFactory()
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    response = while_holding(
        lambda: session_asset_add(session=session, document_id=doc.id, asset_type="audio"),
        then=lambda: client_for(user).delete(f"/api/study-sessions/{session.id}"),
    )
    assert response.status_code == 204, response.content
    assert not StudySession.objects.filter(pk=session.pk).exists()
    assert not SessionAsset.objects.exists()
    assert Document.objects.filter(pk=doc.pk).exists()


@pytest.mark.parametrize("link", ["assets", "snapshot"])
def test_link_committed_while_a_delete_is_under_way_never_fails_the_delete(client_for, link):
    """The delete pauses after removing the links it saw and before removing the session: a link committed
    in that gap used to fail the delete's (deferred) foreign key at commit."""
    user = f.UserFactory()
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    url = f"/api/study-sessions/{session.id}/{link}"

    def add():
        wait_for(_someone_paused, timeout=WAIT)
        if link == "assets":
            return client_for(user).post(url, {"document_id": doc.id, "asset_type": "audio"}, format="json")
        upload = SimpleUploadedFile("page.png", _png(), content_type="image/png")
        return client_for(user).post(url, {"file": upload}, format="multipart")

    with paused("study_studysession", "DELETE", seconds=1.0):
        deleted, added = run_concurrently(lambda: client_for(user).delete(f"/api/study-sessions/{session.id}"), add)
    assert deleted.status_code == 204, deleted.content
    assert added.status_code in (201, 404), added.content
    assert not StudySession.objects.filter(pk=session.pk).exists()
    assert not SessionAsset.objects.exists()


def test_linking_a_document_while_it_is_extracted_neither_waits_for_the_ocr_nor_deadlocks(monkeypatch):
    """Extraction runs the OCR, then locks the document and updates the sessions that link it as a snapshot;
    a link added meanwhile (its deferred FK checks the document at commit) must go through at once, not wait
    for the OCR and then deadlock with it over the session row."""
    from study.services import extraction

    user = f.UserFactory()
    session = f.StudySessionFactory(user=user)
    document = f.DocumentFactory(user=user, extract_status="pending", file_format="png")
    SessionAsset.objects.create(session=session, document=document, asset_type="handwriting_png", role="answer")
    claimed, added, ocr_done = threading.Event(), threading.Event(), threading.Event()

    def slow_ocr(doc):
        claimed.set()
        ocr_done.wait(60)
        return "done", "손글씨", ""

    monkeypatch.setattr(extraction, "_run_backend", slow_ocr)

    def extract() -> str:
        return extraction.document_extract(document_id=document.pk)

    def link() -> str:
        claimed.wait(30)
        session_asset_add(session=session, document_id=document.pk, asset_type="reference")
        added.set()
        return "added"

    def finish_ocr() -> bool:
        linked_during_ocr = added.wait(30)
        ocr_done.set()
        return linked_during_ocr

    assert run_concurrently(extract, link, finish_ocr) == ["done", "added", True]
    session.refresh_from_db()
    assert session.ocr_text == "손글씨"


# --- questions created while their topic is deleted ---------------------------------------------------------


@pytest.mark.parametrize("how", ["create", "import"])
def test_a_question_created_while_its_topic_is_deleted_is_404_and_never_published(client_for, how):
    """The topic delete tombstones the questions it sees; one committed behind its back (and drained while the
    topic still looked live) stayed a live question of a deleted topic in the viewer's feed, for good."""
    from publishing.models import Published
    from publishing.services import publish_sources

    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user)
    row = {"subject": "가스", "question_text": "LNG?", "choices": ["메탄", "에탄"], "correct_choice": 1}
    if how == "create":
        def create():
            return client_for(user).post("/api/study-questions", {"study_topic_id": topic.pk, **row}, format="json")
    else:
        def create():
            return client_for(user).post("/api/study-questions/import", {"study_topic_id": topic.pk,
                                                                         "questions": [row]}, format="json")

    response = while_holding(lambda: topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)), then=create)

    assert response.status_code == 404, response.content
    assert not topic.questions.exists()
    publish_sources(kind_ids={"study_topic": [topic.pk]})
    assert not Published.objects.filter(kind="study_question", deleted=False).exists()


def test_a_question_added_in_the_admin_while_its_topic_is_deleted_is_refused():
    """The admin's form checked the topic before the delete committed; the save waits for the delete, then finds
    the topic gone and saves nothing (it stayed a live question of a deleted topic in the feed)."""
    from django.test import Client

    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user)
    staff = f.UserFactory(is_staff=True, is_superuser=True)
    data = {"user": user.pk, "study_topic": topic.pk, "subject": "가스법규", "question_text": "부취제는?",
            "choices": '["THT", "TBM"]', "correct_choice": 2, "explanation": "", "source": "{}"}

    def add():
        admin = Client()
        admin.force_login(staff)
        return admin.post("/admin/study/question/add/", data, follow=True)

    response = while_holding(lambda: topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)), then=add)

    assert response.status_code == 200
    assert "The topic was deleted meanwhile; nothing was saved." in response.content.decode()
    assert not topic.questions.exists()


# --- rows filed under a topic while it is deleted -------------------------------------------------------------

FILED_UNDER_TOPIC = {
    # what: (the API request, given the user, the topic and a document; the rows it would leave)
    "document link": (lambda client, topic, doc: client.post(f"/api/study-topics/{topic.pk}/documents",
                                                             {"document_id": doc.pk}, format="json"),
                      lambda topic: topic.document_links.all()),
    "session": (lambda client, topic, doc: client.post("/api/study-sessions", {"study_topic_id": topic.pk},
                                                       format="json"),
                lambda topic: topic.sessions.all()),
    "quiz": (lambda client, topic, doc: client.post("/api/quiz-sessions", {"study_topic_id": topic.pk}, format="json"),
             lambda topic: topic.quiz_sessions.all()),
    "card": (lambda client, topic, doc: client.post("/api/study-cards", {"format": "qa", "cue": "LNG?", "fact": "메탄",
                                                                         "study_topic_id": topic.pk}, format="json"),
             lambda topic: topic.cards.all()),
}


@pytest.mark.parametrize("what", FILED_UNDER_TOPIC)
def test_a_row_filed_under_a_topic_while_it_is_deleted_is_404(client_for, what):
    """The write read the topic live before the delete committed, then inserted its row: the foreign-key check
    does not wait for the delete, so a link, a session, a quiz nobody could answer or a card landed on a deleted
    topic with a 201. The topic is now locked live until the write commits."""
    request, rows = FILED_UNDER_TOPIC[what]
    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user)
    f.QuestionFactory(study_topic=topic)  # something to quiz on
    doc = f.DocumentFactory(user=user)

    response = while_holding(lambda: topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)),
                             then=lambda: request(client_for(user), topic, doc))

    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "not_found"
    assert not rows(topic).exists()


@pytest.mark.parametrize("what", ["session", "document link"])
def test_a_row_added_in_the_admin_under_a_topic_being_deleted_is_refused(what):
    """The admin's forms checked the topic before the delete committed and saved after it: a session or a link
    filed under a deleted topic. The save now locks the topic, waits for the delete, and saves nothing."""
    from django.test import Client

    from study.models import TopicDocument
    from study.tests.test_admin_writes import session_form

    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user)
    doc = f.DocumentFactory(user=user)
    staff = f.UserFactory(is_staff=True, is_superuser=True)
    if what == "session":
        url, data = "/admin/study/studysession/add/", session_form(user=user.pk, study_topic=topic.pk)
    else:
        url, data = "/admin/study/topicdocument/add/", {"topic": topic.pk, "document": doc.pk}

    def add():
        admin = Client()
        admin.force_login(staff)
        return admin.post(url, data, follow=True)

    response = while_holding(lambda: topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)), then=add)

    assert response.status_code == 200
    assert "The topic was deleted meanwhile; nothing was saved." in response.content.decode()
    assert not StudySession.objects.filter(study_topic=topic).exists()
    assert not TopicDocument.objects.filter(topic=topic).exists()


def test_a_topic_kept_live_holds_off_its_delete_but_not_rows_filed_under_it():
    """`topic_get_live(lock=True)` took `FOR UPDATE`, which also made every insert pointing at the topic (a
    session, a question, a link: their foreign-key check takes `FOR KEY SHARE`) wait for the holder's commit.
    `FOR NO KEY UPDATE` holds off only what it is for: the topic's delete."""
    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user)
    locked, done = threading.Event(), threading.Event()

    def keep_live() -> None:
        with transaction.atomic():
            topic_get_live(user=user, topic_id=topic.pk, lock=True)
            locked.set()
            done.wait(WAIT)

    def under(write: Callable[[], object]) -> str:
        try:
            locked.wait(WAIT)
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '2s'")
                write()
            return "written"
        except OperationalError as exc:
            return type(exc.__cause__).__name__
        finally:
            done.set()

    def delete_topic() -> None:
        topic_delete(topic=StudyTopic.objects.get(pk=topic.pk))

    filed = run_concurrently(keep_live, lambda: under(lambda: f.StudySessionFactory(user=user, study_topic=topic)))
    locked.clear()
    done.clear()
    deleted = run_concurrently(keep_live, lambda: under(delete_topic))

    assert filed == [None, "written"]
    assert deleted == [None, "LockNotAvailable"]
    assert StudySession.objects.filter(study_topic=topic).count() == 1
    assert StudyTopic.objects.live().filter(pk=topic.pk).exists()
