"""Admin lists and inlines do not read the large columns they do not show: a page of 100 sessions read (and
decoded) 23 MB of handwriting strokes, and a topic's document links every linked document's extracted text."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from study.tests.factories import (
    DocumentFactory,
    SessionAssetFactory,
    StudySessionFactory,
    StudyTopicFactory,
    TopicDocumentFactory,
)

pytestmark = pytest.mark.django_db

STROKES = {"strokes": [[[x, x + 1] for x in range(50)]]}


def read_sql(admin_client, url: str) -> str:
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    assert response.status_code == 200
    return "\n".join(query["sql"] for query in captured.captured_queries)


def queries_of(admin_client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert admin_client.get(url).status_code == 200
    return len(captured)


def test_the_session_list_reads_no_strokes_or_texts(admin_client, user):
    StudySessionFactory.create_batch(3, user=user, strokes_json=STROKES, ocr_text="ocr", source_text="src")
    url = reverse("admin:study_studysession_changelist")
    sql = read_sql(admin_client, url)
    assert "study_studysession" in sql
    for column in ("strokes_json", "ocr_text", "source_text", "ai_summary"):
        assert column not in sql
    few = queries_of(admin_client, url)
    StudySessionFactory.create_batch(10, user=user, strokes_json=STROKES)
    assert queries_of(admin_client, url) == few  # nothing shown reads a deferred column row by row


def test_the_asset_list_reads_no_strokes_or_extracted_text_and_no_row_per_asset(admin_client, user):
    session = StudySessionFactory(user=user, strokes_json=STROKES)
    SessionAssetFactory(session=session, document=DocumentFactory(user=user, extracted_text="long text"))
    url = reverse("admin:study_sessionasset_changelist")
    sql = read_sql(admin_client, url)
    assert "strokes_json" not in sql and "extracted_text" not in sql
    few = queries_of(admin_client, url)
    for _ in range(5):
        SessionAssetFactory(session=StudySessionFactory(user=user), document=DocumentFactory(user=user))
    assert queries_of(admin_client, url) == few


def test_the_document_list_reads_no_extracted_text(admin_client, user):
    DocumentFactory.create_batch(2, user=user, extracted_text="long text", extract_status="done")
    assert "extracted_text" not in read_sql(admin_client, reverse("admin:study_document_changelist"))


def test_document_links_on_a_topic_and_a_session_read_no_extracted_text(admin_client, user):
    topic = StudyTopicFactory(user=user)
    session = StudySessionFactory(user=user)
    for _ in range(2):
        document = DocumentFactory(user=user, extracted_text="long text", extract_status="done")
        TopicDocumentFactory(topic=topic, document=document)
        SessionAssetFactory(session=session, document=document)
    assert "extracted_text" not in read_sql(admin_client, reverse("admin:study_studytopic_change", args=[topic.pk]))
    assert "extracted_text" not in read_sql(
        admin_client, reverse("admin:study_studysession_change", args=[session.pk])
    )
