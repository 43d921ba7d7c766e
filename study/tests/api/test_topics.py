"""/api/study-topics: CRUD, stats, sections, links to documents, publish outbox, races."""

import unicodedata
from datetime import timedelta

import pytest
from django.utils import timezone

from publishing.models import PublishOutbox
from study.models import StudyTopic, TopicDocument
from study.tests import factories as f
from studyserver.testing import run_concurrently

pytestmark = pytest.mark.django_db


def _outbox(topic_id):
    return PublishOutbox.objects.filter(kind="study_topic", source_id=topic_id).count()


@pytest.mark.parametrize("path", ["/api/study-topics", "/api/study-topics/"])
def test_create_with_and_without_slash(api_client, user, path):
    response = api_client.post(path, {"name": "가스기사 🔥", "description": "필기"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "가스기사 🔥"
    assert body["study_type"] == "certification"
    assert body["stats"] == {
        "session_count": 0, "document_count": 0, "question_count": 0, "card_count": 0,
        "cards_needing_review": 0, "questions_due": 0, "cards_due": 0,
    }  # fmt: skip
    assert StudyTopic.objects.get(pk=body["id"]).user == user
    assert _outbox(body["id"]) == 1


def test_duplicate_active_name_conflicts_but_deleted_name_is_free(api_client, user):
    topic = f.StudyTopicFactory(user=user, name="JLPT N3")
    response = api_client.post("/api/study-topics", {"name": "JLPT N3"}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "conflict"
    api_client.delete(f"/api/study-topics/{topic.id}")
    assert api_client.post("/api/study-topics", {"name": "JLPT N3"}, format="json").status_code == 201


def test_same_name_for_another_user_is_fine(api_client, other_user):
    f.StudyTopicFactory(user=other_user, name="JLPT N3")
    assert api_client.post("/api/study-topics", {"name": "JLPT N3"}, format="json").status_code == 201


def test_create_validation(api_client):
    response = api_client.post("/api/study-topics", {"name": ""}, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"
    assert "name" in response.json()["errors"]


def test_rename_and_conflict_and_publish(api_client, user):
    topic = f.StudyTopicFactory(user=user, name="a")
    f.StudyTopicFactory(user=user, name="b")
    before = topic.updated_at
    response = api_client.patch(f"/api/study-topics/{topic.id}/", {"name": "c"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "c"
    assert _outbox(topic.id) == 1
    topic.refresh_from_db()
    assert topic.updated_at > before
    response = api_client.patch(f"/api/study-topics/{topic.id}", {"name": "b"}, format="json")
    assert response.status_code == 409
    topic.refresh_from_db()
    assert topic.name == "c"
    # description only: no publish (the feed does not carry it)
    api_client.patch(f"/api/study-topics/{topic.id}", {"description": "x"}, format="json")
    assert _outbox(topic.id) == 1
    # the study type alone: published (the feed carries it)
    PublishOutbox.objects.all().delete()
    response = api_client.patch(f"/api/study-topics/{topic.id}", {"study_type": "language"}, format="json")
    assert response.status_code == 200
    assert _outbox(topic.id) == 1


def test_soft_delete_keeps_sessions_and_hides_topic(api_client, user):
    topic = f.StudyTopicFactory(user=user)
    session = f.StudySessionFactory(user=user, study_topic=topic)
    assert api_client.delete(f"/api/study-topics/{topic.id}").status_code == 204
    topic.refresh_from_db()
    assert topic.deleted_at is not None
    assert _outbox(topic.id) == 1
    session.refresh_from_db()
    assert session.study_topic_id == topic.id
    assert api_client.get(f"/api/study-topics/{topic.id}").status_code == 404
    assert api_client.get("/api/study-topics").json()["count"] == 0
    assert api_client.delete(f"/api/study-topics/{topic.id}").status_code == 404


def test_other_users_topic_is_404_everywhere(api_client, other_user, user):
    topic = f.StudyTopicFactory(user=other_user)
    doc = f.DocumentFactory(user=user)
    assert api_client.get(f"/api/study-topics/{topic.id}").status_code == 404
    assert api_client.patch(f"/api/study-topics/{topic.id}", {"name": "x"}, format="json").status_code == 404
    assert api_client.delete(f"/api/study-topics/{topic.id}").status_code == 404
    assert api_client.post(
        f"/api/study-topics/{topic.id}/documents", {"document_id": doc.id}, format="json"
    ).status_code == 404
    assert api_client.get("/api/study-topics").json()["results"] == []
    assert StudyTopic.objects.get(pk=topic.id).deleted_at is None


def test_unauthenticated_is_401(anon_client):
    response = anon_client.get("/api/study-topics")
    assert response.status_code == 401
    assert response.json()["error_code"] == "not_authenticated"
    assert "Token" in response["WWW-Authenticate"]


def test_stats_count_only_live_and_due(api_client, user):
    now = timezone.now()
    topic = f.StudyTopicFactory(user=user)
    f.StudySessionFactory.create_batch(2, user=user, study_topic=topic)
    f.TopicDocumentFactory(topic=topic)
    f.TopicDocumentFactory(topic=topic, document__deleted_at=now)
    q_due = f.QuestionFactory(study_topic=topic)
    q_later = f.QuestionFactory(study_topic=topic)
    q_deleted = f.QuestionFactory(study_topic=topic, deleted_at=now)
    f.QuestionProgressFactory(question=q_due, due_at=now - timedelta(hours=1))
    f.QuestionProgressFactory(question=q_later, due_at=now + timedelta(days=1))
    f.QuestionProgressFactory(question=q_deleted, due_at=now - timedelta(hours=1))
    approved = f.MemoCardFactory(user=user, study_topic=topic)
    f.MemoCardFactory(user=user, study_topic=topic, needs_review=True)
    f.MemoCardFactory(user=user, study_topic=topic, deleted_at=now)
    in_review_due = f.MemoCardFactory(user=user, study_topic=topic, needs_review=True)
    mastered = f.MemoCardFactory(user=user, study_topic=topic)
    f.CardProgressFactory(card=approved, due_at=now - timedelta(minutes=1), review_stage=1)
    f.CardProgressFactory(card=in_review_due, due_at=now - timedelta(minutes=1))
    f.CardProgressFactory(card=mastered, due_at=None, review_stage=4)
    never_recalled = f.MemoCardFactory(user=user, study_topic=topic)  # first recall: in the due list too
    known = f.MemoCardFactory(user=user, study_topic=topic)
    f.CardProgressFactory(card=known, due_at=None, review_stage=0)  # known at first sight: not due
    f.StudyTopicFactory(user=user)  # another topic: counts stay separate

    body = api_client.get(f"/api/study-topics/{topic.id}").json()
    assert body["stats"] == {
        "session_count": 2, "document_count": 1, "question_count": 2, "card_count": 6,
        "cards_needing_review": 2, "questions_due": 1, "cards_due": 2,
    }  # fmt: skip
    due_list = api_client.get("/api/study-cards/due?limit=200").json()
    assert sorted(card["id"] for card in due_list) == sorted([approved.id, never_recalled.id])
    listed = {t["id"]: t["stats"] for t in api_client.get("/api/study-topics").json()["results"]}
    assert listed[topic.id] == body["stats"]


def test_detail_sections(api_client, user):
    topic = f.StudyTopicFactory(user=user)
    sessions = f.StudySessionFactory.create_batch(22, user=user, study_topic=topic)
    link = f.TopicDocumentFactory(topic=topic)
    f.TopicDocumentFactory(topic=topic, document__deleted_at=timezone.now())
    f.DocumentFactory(user=user)  # not linked
    body = api_client.get(f"/api/study-topics/{topic.id}").json()
    section_sessions = body["sections"]["sessions"]
    assert len(section_sessions) == 20
    assert section_sessions[0]["id"] == sessions[-1].id  # newest first
    assert [d["id"] for d in body["sections"]["documents"]] == [link.document_id]


def test_detail_query_count_is_fixed(api_client, user, django_assert_max_num_queries):
    topic = f.StudyTopicFactory(user=user)
    f.StudySessionFactory.create_batch(5, user=user, study_topic=topic)
    for _ in range(5):
        f.TopicDocumentFactory(topic=topic)
    with django_assert_max_num_queries(6):
        assert api_client.get(f"/api/study-topics/{topic.id}").status_code == 200


@pytest.mark.parametrize("rows", [1, 50])
def test_list_query_count_is_constant(api_client, user, rows, django_assert_max_num_queries):
    for topic in f.StudyTopicFactory.create_batch(rows, user=user):
        f.StudySessionFactory(user=user, study_topic=topic)
        f.TopicDocumentFactory(topic=topic)
    with django_assert_max_num_queries(4):
        body = api_client.get("/api/study-topics?limit=200").json()
    assert body["count"] == rows


def test_list_pagination(api_client, user):
    f.StudyTopicFactory.create_batch(3, user=user)
    body = api_client.get("/api/study-topics?limit=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    body = api_client.get("/api/study-topics?limit=2&offset=2").json()
    assert len(body["results"]) == 1 and body["previous"]


def test_link_and_unlink_document(api_client, user):
    topic = f.StudyTopicFactory(user=user)
    doc = f.DocumentFactory(user=user)
    url = f"/api/study-topics/{topic.id}/documents"
    response = api_client.post(url, {"document_id": doc.id}, format="json")
    assert response.status_code == 201
    assert response.json()["document_id"] == doc.id and response.json()["topic_id"] == topic.id
    duplicate = api_client.post(url + "/", {"document_id": doc.id}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error_code"] == "conflict"
    assert api_client.delete(f"{url}/{doc.id}").status_code == 204
    assert not TopicDocument.objects.filter(topic=topic).exists()
    doc.refresh_from_db()
    assert doc.deleted_at is None
    assert api_client.delete(f"{url}/{doc.id}/").status_code == 404


def test_link_foreign_or_deleted_document_is_404(api_client, user, other_user):
    topic = f.StudyTopicFactory(user=user)
    url = f"/api/study-topics/{topic.id}/documents"
    foreign = f.DocumentFactory(user=other_user)
    deleted = f.DocumentFactory(user=user, deleted_at=timezone.now())
    assert api_client.post(url, {"document_id": foreign.id}, format="json").status_code == 404
    assert api_client.post(url, {"document_id": deleted.id}, format="json").status_code == 404
    assert api_client.post(url, {"document_id": 10**30}, format="json").status_code == 400
    assert api_client.post(url, {}, format="json").status_code == 400


def test_by_document(api_client, user, other_user):
    doc = f.DocumentFactory(user=user)
    t1 = f.TopicDocumentFactory(topic=f.StudyTopicFactory(user=user), document=doc).topic
    deleted = f.StudyTopicFactory(user=user, deleted_at=timezone.now())
    f.TopicDocumentFactory(topic=deleted, document=doc)
    f.StudyTopicFactory(user=user)
    for path in (f"/api/study-topics/by-document/{doc.id}", f"/api/study-topics/by-document/{doc.id}/"):
        response = api_client.get(path)
        assert response.status_code == 200
        assert [t["id"] for t in response.json()] == [t1.id]
    foreign = f.DocumentFactory(user=other_user)
    assert api_client.get(f"/api/study-topics/by-document/{foreign.id}").status_code == 404
    assert api_client.get("/api/study-topics/by-document/abc").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_names_give_one_201(client_for):
    user = f.UserFactory()
    clients = [client_for(user) for _ in range(6)]
    statuses = run_concurrently(
        *(lambda c=c: c.post("/api/study-topics", {"name": "race"}, format="json").status_code for c in clients)
    )
    assert sorted(statuses) == [201] + [409] * 5
    assert StudyTopic.objects.filter(user=user, name="race").count() == 1


def _topic_with_rows(user, i):
    """A topic holding sessions (with assets), documents, questions with progress, and cards with evidence."""
    topic = f.StudyTopicFactory(user=user)
    for session in f.StudySessionFactory.create_batch(2, user=user, study_topic=topic):
        f.SessionAssetFactory(session=session)
    link = f.TopicDocumentFactory(topic=topic)
    for question in f.QuestionFactory.create_batch(2, study_topic=topic):
        f.QuestionProgressFactory(question=question, due_at=timezone.now() - timedelta(hours=i + 1))
        card = f.MemoCardFactory(user=user, source_question=question, study_topic=topic, needs_review=bool(i % 2))
        f.CardEvidenceFactory(card=card)
    return topic, link.document


@pytest.mark.parametrize("sessions", [2, 25])
def test_detail_query_count_does_not_grow_with_its_sections(api_client, user, sessions, django_assert_max_num_queries):
    topic, _ = _topic_with_rows(user, 0)
    for session in f.StudySessionFactory.create_batch(sessions, user=user, study_topic=topic):
        f.SessionAssetFactory(session=session)
    for _ in range(sessions):
        f.TopicDocumentFactory(topic=topic)
    # token auth (1) + the topic with its stats (1) + sessions (1) + documents (1)
    with django_assert_max_num_queries(4):
        body = api_client.get(f"/api/study-topics/{topic.id}").json()
    assert len(body["sections"]["sessions"]) == min(sessions + 2, 20)
    assert len(body["sections"]["documents"]) == sessions + 1
    assert body["stats"]["question_count"] == 2 and body["stats"]["card_count"] == 2


@pytest.mark.parametrize("topics", [1, 12])
def test_by_document_query_count_is_constant(api_client, user, topics, django_assert_max_num_queries):
    _, document = _topic_with_rows(user, 0)
    for i in range(1, topics):
        topic, _ = _topic_with_rows(user, i)
        f.TopicDocumentFactory(topic=topic, document=document)
    # token auth (1) + the document (1) + the topics with their stats (1)
    with django_assert_max_num_queries(3):
        body = api_client.get(f"/api/study-topics/by-document/{document.id}").json()
    assert len(body) == topics
    assert all(t["stats"]["session_count"] == 2 and t["stats"]["question_count"] == 2 for t in body)


def test_names_differing_only_in_unicode_normalisation_are_the_same_name(api_client, user):
    # "가스기사" typed (NFC) and the same name decomposed (NFD, as macOS file names are) look identical: one topic.
    nfc = unicodedata.normalize("NFC", "가스기사")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    created = api_client.post("/api/study-topics", {"name": nfd}, format="json")
    assert created.status_code == 201
    assert created.json()["name"] == nfc
    duplicate = api_client.post("/api/study-topics", {"name": nfc}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["error_code"] == "conflict"
    other = f.StudyTopicFactory(user=user, name="JLPT N3")
    renamed = api_client.patch(f"/api/study-topics/{other.id}", {"name": nfd}, format="json")
    assert renamed.status_code == 409
    assert StudyTopic.objects.filter(user=user, deleted_at__isnull=True).count() == 2


def test_a_question_due_this_very_moment_counts_as_due(api_client, user, monkeypatch):
    now = timezone.now()
    topic = f.StudyTopicFactory(user=user)
    f.QuestionProgressFactory(question=f.QuestionFactory(study_topic=topic), review_stage=0, due_at=now)
    monkeypatch.setattr("study.selectors.topics.timezone.now", lambda: now)

    body = api_client.get(f"/api/study-topics/{topic.id}").json()

    assert body["stats"]["questions_due"] == 1


def test_linking_a_document_deleted_meanwhile_is_404_and_links_nothing(api_client, user, monkeypatch):
    """Read live, then deleted by another request before the link was written: the link was made to a deleted
    document (session links lock it; topic links did not)."""
    from study.api import topics as topic_api
    from study.tests.api.test_assets import document_deleted_once_read

    topic, doc = f.StudyTopicFactory(user=user), f.DocumentFactory(user=user)
    document_deleted_once_read(monkeypatch, topic_api, doc)
    response = api_client.post(f"/api/study-topics/{topic.id}/documents", {"document_id": doc.id}, format="json")
    assert response.status_code == 404
    assert not TopicDocument.objects.filter(document=doc).exists()


def test_unlinking_a_document_from_one_topic_keeps_its_other_links(api_client, user):
    doc = f.DocumentFactory(user=user)
    first, second = f.StudyTopicFactory.create_batch(2, user=user)
    for topic in (first, second):
        f.TopicDocumentFactory(topic=topic, document=doc)
    assert api_client.delete(f"/api/study-topics/{first.id}/documents/{doc.id}").status_code == 204
    assert list(TopicDocument.objects.filter(document=doc).values_list("topic_id", flat=True)) == [second.id]
    assert [t["id"] for t in api_client.get(f"/api/study-topics/by-document/{doc.id}").json()] == [second.id]


def test_the_list_is_newest_first(api_client, user):
    older, newer = f.StudyTopicFactory(user=user), f.StudyTopicFactory(user=user)
    assert [t["id"] for t in api_client.get("/api/study-topics").json()["results"]] == [newer.id, older.id]
