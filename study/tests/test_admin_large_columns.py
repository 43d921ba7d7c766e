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


def _page_select(admin_client, url: str, table: str) -> str:
    """The statement that reads the page's rows of `table`."""
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(url)
    assert response.status_code == 200
    pages = [q["sql"] for q in captured.captured_queries
             if q["sql"].startswith(f'SELECT "{table}"."id"') and f'FROM "{table}"' in q["sql"]]
    assert len(pages) == 1, pages
    return pages[0]


@pytest.mark.parametrize(("model", "table", "joined"), [
    ("questionattempt", "study_questionattempt", ("study_question", "study_quizsession")),
    ("cardprogress", "study_cardprogress", ("study_memocard", "auth_user")),
])
def test_big_lists_read_their_related_rows_after_the_page_is_cut(admin_client, model, table, joined):
    """Joined, every attempt's question and (wide) quiz session were read before the sort and the offset: a late
    page of 250,000 attempts took 1 s. The page is cut first; the related rows of its own rows follow, in a fixed
    number of queries, and the page still names them."""
    from study.tests.factories import CardProgressFactory, QuestionAttemptFactory

    make = QuestionAttemptFactory if model == "questionattempt" else CardProgressFactory
    rows = [make() for _ in range(3)]
    url = reverse(f"admin:study_{model}_changelist")
    page = _page_select(admin_client, url, table)
    assert not any(f'JOIN "{other}"' in page for other in joined), page
    assert "question_ids" not in read_sql(admin_client, url)  # the quiz's snapshot is not read for its label
    few = queries_of(admin_client, url)
    rows += [make() for _ in range(5)]
    assert queries_of(admin_client, url) == few
    html = admin_client.get(url).content.decode()
    for row in rows:
        related = row.question if model == "questionattempt" else row.card
        assert str(related)[:20] in html


def test_the_feed_list_reads_no_payloads_and_searches_a_whole_pub_id(admin_client, user):
    from publishing.models import Published
    from publishing.services import publish_sources
    from study.tests.factories import MemoCardFactory

    cards = MemoCardFactory.create_batch(2, user=user)
    publish_sources(kind_ids={"study_card": [card.pk for card in cards]})
    published = Published.objects.order_by("seq").first()
    url = reverse("admin:publishing_published_changelist")
    sql = _page_select(admin_client, url, "publishing_published")
    assert '"payload"' not in sql and '"item"' not in sql
    searched = read_sql(admin_client, f"{url}?q={published.pub_id}")
    assert "UPPER(" not in searched and " LIKE " not in searched  # an exact match the unique index can serve
    found = admin_client.get(url, {"q": published.pub_id}).context["cl"].result_list
    assert [row.pk for row in found] == [published.pk]
    assert not admin_client.get(url, {"q": published.pub_id[:-2]}).context["cl"].result_list  # not a substring
