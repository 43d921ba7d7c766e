"""Topic ↔ document and session ↔ document links join rows of one owner: in the admin (a form error) and in
PostgreSQL (triggers of migration 0007, also when an owner changes)."""

import pytest
from django.contrib.admin.models import LogEntry
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from study.models import Document, SessionAsset, StudySession, StudyTopic, TopicDocument
from study.tests.factories import (
    DocumentFactory,
    MemoCardFactory,
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    SessionAssetFactory,
    StudySessionFactory,
    StudyTopicFactory,
    TopicDocumentFactory,
)

pytestmark = pytest.mark.django_db

TOPIC_LINK = "study_topicdocument_same_owner_chk"
SESSION_LINK = "study_sessionasset_same_owner_chk"


def inline_management(prefix: str, total: int, initial: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def rejects(constraint: str, write) -> None:
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        write()
    assert info.value.__cause__.diag.constraint_name == constraint


def inline_errors(response) -> list:
    return [form.errors for formset in response.context["inline_admin_formsets"] for form in formset.formset]


# --- the admin -----------------------------------------------------------------------------------


def test_topic_document_admin_refuses_another_users_document(admin_client, user, other_user):
    topic = StudyTopicFactory(user=user)
    foreign = DocumentFactory(user=other_user)
    response = admin_client.post(reverse("admin:study_topicdocument_add"),
                                 {"topic": topic.pk, "document": foreign.pk})
    assert response.status_code == 200
    assert "another user" in str(response.context["adminform"].form.errors["document"])
    assert not TopicDocument.objects.exists()

    own = DocumentFactory(user=user)
    response = admin_client.post(reverse("admin:study_topicdocument_add"), {"topic": topic.pk, "document": own.pk})
    assert response.status_code == 302
    link = TopicDocument.objects.get()
    assert (link.topic_id, link.document_id, link.user_id) == (topic.pk, own.pk, user.pk)


def test_topic_document_admin_refuses_moving_a_link_to_another_users_topic(admin_client, user, other_user):
    link = TopicDocumentFactory(topic=StudyTopicFactory(user=user))
    response = admin_client.post(reverse("admin:study_topicdocument_change", args=[link.pk]),
                                 {"topic": StudyTopicFactory(user=other_user).pk, "document": link.document_id})
    assert response.status_code == 200
    assert "document" in response.context["adminform"].form.errors
    link.refresh_from_db()
    assert link.topic.user_id == user.pk


def test_topic_inline_refuses_another_users_document(admin_client, user, other_user):
    topic = StudyTopicFactory(user=user)
    data = {"name": topic.name, "study_type": topic.study_type, "description": "",
            **inline_management("document_links", 1), "document_links-0-document": DocumentFactory(user=other_user).pk}
    response = admin_client.post(reverse("admin:study_studytopic_change", args=[topic.pk]), data)
    assert response.status_code == 200
    assert any("document" in errors for errors in inline_errors(response))
    assert not TopicDocument.objects.exists()

    # A new topic's inline compares with the owner chosen in the same form.
    data = {"user": user.pk, "name": "새 주제", "study_type": "certification", "description": "",
            **inline_management("document_links", 1), "document_links-0-document": DocumentFactory(user=other_user).pk}
    response = admin_client.post(reverse("admin:study_studytopic_add"), data)
    assert response.status_code == 200
    assert any("document" in errors for errors in inline_errors(response))
    assert not TopicDocument.objects.exists()

    data["document_links-0-document"] = DocumentFactory(user=user).pk
    response = admin_client.post(reverse("admin:study_studytopic_add"), data)
    assert response.status_code == 302
    assert TopicDocument.objects.get().user_id == user.pk


def test_session_asset_admin_refuses_another_users_document(admin_client, user, other_user):
    session = StudySessionFactory(user=user)
    data = {"session": session.pk, "document": DocumentFactory(user=other_user).pk, "asset_type": "reference",
            "role": "", "sort_order": 0}
    response = admin_client.post(reverse("admin:study_sessionasset_add"), data)
    assert response.status_code == 200
    assert "another user" in str(response.context["adminform"].form.errors["document"])
    assert not SessionAsset.objects.exists()

    data["document"] = DocumentFactory(user=user).pk
    assert admin_client.post(reverse("admin:study_sessionasset_add"), data).status_code == 302
    assert SessionAsset.objects.get().session_id == session.pk


def session_form(session: StudySession, **changes) -> dict:
    return {"study_type": session.study_type, "mode": session.mode, "certification": session.certification,
            "subject": session.subject, "metadata": "{}", "strokes_json": "{}", "repetition_count": 0,
            "schema_version": 1, "correct_count": 0, "incorrect_count": 0, **inline_management("assets", 0),
            **changes}


def test_session_inline_refuses_another_users_document(admin_client, user, other_user):
    session = StudySessionFactory(user=user)
    data = session_form(session, **inline_management("assets", 1), **{
        "assets-0-document": DocumentFactory(user=other_user).pk, "assets-0-asset_type": "reference",
        "assets-0-role": "", "assets-0-sort_order": "0"})
    response = admin_client.post(reverse("admin:study_studysession_change", args=[session.pk]), data)
    assert response.status_code == 200
    assert any("document" in errors for errors in inline_errors(response))
    assert not SessionAsset.objects.exists()


def asset_row(index: int, document, asset_type: str = "reference", role: str = "", asset=None) -> dict:
    row = {"document": document.pk, "asset_type": asset_type, "role": role, "sort_order": "0"}
    if asset is not None:
        row.update(id=asset.pk, session=asset.session_id)
    return {f"assets-{index}-{name}": value for name, value in row.items()}


def test_session_inline_refuses_a_second_link_of_one_document_type_and_role(admin_client, user):
    """An empty role is one value (the unique key is over COALESCE(role, '')): was an IntegrityError, a 500."""
    session = StudySessionFactory(user=user)
    document = DocumentFactory(user=user)
    existing = SessionAssetFactory(session=session, document=document, asset_type="reference", role=None)
    url = reverse("admin:study_studysession_change", args=[session.pk])

    data = session_form(session, **inline_management("assets", 2, initial=1), **asset_row(0, document, asset=existing),
                        **asset_row(1, document))
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert any("already links" in str(errors) for errors in inline_errors(response))
    assert list(SessionAsset.objects.values_list("pk", flat=True)) == [existing.pk]

    # two new rows alike in one post
    other = DocumentFactory(user=user)
    data = session_form(session, **inline_management("assets", 3, initial=1), **asset_row(0, document, asset=existing),
                        **asset_row(1, other, role="answer"), **asset_row(2, other, role="answer"))
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert any("already links" in str(errors) for errors in inline_errors(response))
    assert SessionAsset.objects.count() == 1

    # another role is another link; the existing row deleted frees its key
    data = session_form(session, **inline_management("assets", 3, initial=1),
                        **asset_row(0, document, asset=existing), **{"assets-0-DELETE": "on"},
                        **asset_row(1, document), **asset_row(2, document, role="answer"))
    response = admin_client.post(url, data)
    assert response.status_code == 302, inline_errors(response)
    assert sorted(SessionAsset.objects.values_list("role", flat=True), key=str) == [None, "answer"]
    assert not SessionAsset.objects.filter(pk=existing.pk).exists()


def messages_on(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


def test_links_that_swap_their_documents_refuse_the_whole_save(admin_client, user):
    """The formset sees no duplicate in the final rows, but Django saves them one by one and the first collides
    with the second (was an IntegrityError on the unique key, a 500)."""
    def refused(url: str, data: dict) -> None:
        response = admin_client.post(url, data)
        assert response.status_code == 302 and response.url == url  # the form again, with the message
        assert any("change them one at a time" in message for message in messages_on(response))

    first, second = DocumentFactory(user=user), DocumentFactory(user=user)
    session = StudySessionFactory(user=user, subject="가스일반")
    assets = [SessionAssetFactory(session=session, document=doc, asset_type="reference", role=None)
              for doc in (first, second)]
    data = session_form(session, subject="바뀐 과목", **inline_management("assets", 2, initial=2),
                        **asset_row(0, second, asset=assets[0]), **asset_row(1, first, asset=assets[1]))
    refused(reverse("admin:study_studysession_change", args=[session.pk]), data)
    assert [asset.document_id for asset in SessionAsset.objects.order_by("pk")] == [first.pk, second.pk]
    session.refresh_from_db()
    assert session.subject == "가스일반"  # the session's own change went with its links
    assert not LogEntry.objects.filter(object_id=str(session.pk)).exists()

    topic = StudyTopicFactory(user=user, name="주제")
    links = [TopicDocumentFactory(topic=topic, document=doc) for doc in (first, second)]
    data = {"name": "바뀐 주제", "study_type": topic.study_type, "description": "",
            **inline_management("document_links", 2, initial=2)}
    for index, (link, doc) in enumerate(zip(links, (second, first), strict=True)):
        data |= {f"document_links-{index}-id": link.pk, f"document_links-{index}-topic": topic.pk,
                 f"document_links-{index}-document": doc.pk}
    refused(reverse("admin:study_studytopic_change", args=[topic.pk]), data)
    assert [link.document_id for link in TopicDocument.objects.order_by("pk")] == [first.pk, second.pk]
    topic.refresh_from_db()
    assert topic.name == "주제"


def test_session_admin_refuses_another_users_topic_and_keeps_the_owner(admin_client, user, other_user):
    session = StudySessionFactory(user=user)
    url = reverse("admin:study_studysession_change", args=[session.pk])
    response = admin_client.post(url, session_form(session, study_topic=StudyTopicFactory(user=other_user).pk))
    assert response.status_code == 200
    assert "study_topic" in response.context["adminform"].form.errors

    response = admin_client.post(url, session_form(session, user=other_user.pk))  # the owner is read-only
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.user_id == user.pk and session.study_topic_id is None


def test_links_newly_pointed_at_deleted_rows_are_refused_as_the_api_refuses_them(admin_client, user):
    """A session, a topic's document link, a card's progress, a question's progress and an explanation cannot be
    pointed at a soft-deleted row in the admin (the API answers 404); a link made before the delete stays."""
    now = timezone.now()
    gone_topic = StudyTopicFactory(user=user, deleted_at=now)
    gone_question = QuestionFactory(study_topic=StudyTopicFactory(user=user), deleted_at=now)
    gone_card = MemoCardFactory(user=user, deleted_at=now)
    attempts = [
        ("admin:study_studysession_add",
         session_form(StudySession(study_type="language"), user=user.pk, study_topic=gone_topic.pk), "study_topic"),
        ("admin:study_topicdocument_add", {"topic": gone_topic.pk, "document": DocumentFactory(user=user).pk},
         "topic"),
        ("admin:study_cardprogress_add", {"user": user.pk, "card": gone_card.pk, "review_stage": 0}, "card"),
        ("admin:study_questionprogress_add", {"user": user.pk, "question": gone_question.pk, "review_stage": 0,
                                              "pattern_window_attempts": "[]"}, "question"),
        ("admin:study_questionexplanation_add", {"question": gone_question.pk, "text": "메탄", "backend": "manual",
                                                 "passages": "[]"}, "question"),
    ]
    for url_name, data, field in attempts:
        response = admin_client.post(reverse(url_name), data)
        assert response.status_code == 200, (url_name, response.status_code)
        assert "is deleted" in str(response.context["adminform"].form.errors.get(field)), (url_name, field)
    assert not StudySession.objects.filter(study_topic=gone_topic).exists()
    assert not TopicDocument.objects.filter(topic=gone_topic).exists()

    kept = StudySessionFactory(user=user, study_topic=StudyTopicFactory(user=user))
    StudyTopic.objects.filter(pk=kept.study_topic_id).update(deleted_at=now)
    response = admin_client.post(reverse("admin:study_studysession_change", args=[kept.pk]),
                                 session_form(kept, study_topic=kept.study_topic_id, subject="renamed"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    kept.refresh_from_db()
    assert kept.subject == "renamed" and kept.study_topic.deleted_at is not None


def test_a_progress_row_cannot_name_an_attempt_of_another_question(admin_client, user):
    topic = StudyTopicFactory(user=user)
    question, other = QuestionFactory(study_topic=topic), QuestionFactory(study_topic=topic)
    attempt = QuestionAttemptFactory(quiz_session=QuizSessionFactory(study_topic=topic), question=other)
    progress = QuestionProgressFactory(question=question)
    response = admin_client.post(reverse("admin:study_questionprogress_change", args=[progress.pk]),
                                 {"question": question.pk, "last_attempt": attempt.pk, "review_stage": 0,
                                  "pattern_window_attempts": "[]"})
    assert response.status_code == 200
    assert "another question" in str(response.context["adminform"].form.errors["last_attempt"])


def test_document_owner_is_read_only_in_the_admin(admin_client, user, other_user):
    document = DocumentFactory(user=user)
    response = admin_client.get(reverse("admin:study_document_change", args=[document.pk]))
    assert "user" in response.context["adminform"].readonly_fields


# --- the database (PostgreSQL triggers) ----------------------------------------------------------


@pytest.mark.postgresql  # the triggers of migration 0007
def test_database_refuses_cross_owner_topic_links(user, other_user):
    topic = StudyTopicFactory(user=user)
    foreign = DocumentFactory(user=other_user)
    rejects(TOPIC_LINK, lambda: TopicDocument.objects.create(user=user, topic=topic, document=foreign))
    rejects(TOPIC_LINK, lambda: TopicDocument.objects.create(user=other_user, topic=topic, document=foreign))
    own = DocumentFactory(user=user)
    rejects(TOPIC_LINK, lambda: TopicDocument.objects.create(user=other_user, topic=topic, document=own))
    link = TopicDocument.objects.create(user=user, topic=topic, document=own)
    rejects(TOPIC_LINK, lambda: TopicDocument.objects.filter(pk=link.pk).update(document=foreign))
    rejects(TOPIC_LINK, lambda: TopicDocument.objects.filter(pk=link.pk).update(
        topic=StudyTopicFactory(user=other_user)))


@pytest.mark.postgresql  # the triggers of migration 0007
def test_database_refuses_cross_owner_session_assets(user, other_user):
    session = StudySessionFactory(user=user)
    foreign = DocumentFactory(user=other_user)
    rejects(SESSION_LINK, lambda: SessionAsset.objects.create(session=session, document=foreign, asset_type="audio"))
    asset = SessionAsset.objects.create(session=session, document=DocumentFactory(user=user), asset_type="audio")
    rejects(SESSION_LINK, lambda: SessionAsset.objects.filter(pk=asset.pk).update(document=foreign))
    rejects(SESSION_LINK, lambda: SessionAsset.objects.filter(pk=asset.pk).update(
        session=StudySessionFactory(user=other_user)))


@pytest.mark.postgresql  # the triggers of migration 0007
def test_database_refuses_an_owner_change_that_would_split_a_link(user, other_user):
    link = TopicDocumentFactory(topic=StudyTopicFactory(user=user))
    asset = SessionAssetFactory(session=StudySessionFactory(user=user))
    rejects(TOPIC_LINK, lambda: type(link.topic).objects.filter(pk=link.topic_id).update(user=other_user))
    rejects(TOPIC_LINK, lambda: type(link.document).objects.filter(pk=link.document_id).update(user=other_user))
    rejects(SESSION_LINK, lambda: type(asset.document).objects.filter(pk=asset.document_id).update(user=other_user))
    rejects(SESSION_LINK, lambda: StudySession.objects.filter(pk=asset.session_id).update(user=other_user))

    # Unlinked rows may change owner (nothing in the app does; the rule is the links).
    lonely = DocumentFactory(user=user)
    type(lonely).objects.filter(pk=lonely.pk).update(user=other_user)
    lonely.refresh_from_db()
    assert lonely.user_id == other_user.pk



@pytest.mark.parametrize("links", [5, 50])
def test_the_topic_and_session_pages_read_their_documents_at_once(admin_client, user, links,
                                                                  django_assert_max_num_queries):
    topic = StudyTopicFactory(user=user)
    session = StudySessionFactory(user=user)
    for document in DocumentFactory.create_batch(links, user=user):
        TopicDocumentFactory(topic=topic, document=document)
        SessionAssetFactory(session=session, document=document)
    for url, rows in ((reverse("admin:study_studytopic_change", args=[topic.pk]), "document_links"),
                      (reverse("admin:study_studysession_change", args=[session.pk]), "assets")):
        with django_assert_max_num_queries(8):
            page = admin_client.get(url)
        assert page.status_code == 200
        assert page.content.count(f'name="{rows}-'.encode()) >= links  # every row is on the page
        for document in Document.objects.filter(user=user):  # each row with its document's label and link
            assert reverse("admin:study_document_change", args=[document.pk]).encode() in page.content, url


# --- the OCR text follows snapshot links changed in the admin, as in the API -----------------------------------


@pytest.fixture
def two_snapshots(user):
    """A session whose two extracted snapshots read PAGE ONE (older) and PAGE TWO (newer): (session, links)."""
    from study.tests.api.test_snapshots import EXTRACTED, session_with_two_snapshots

    session, older, newer = session_with_two_snapshots(user, older=EXTRACTED[0], newer=EXTRACTED[1])
    assert session.ocr_text == "PAGE TWO"
    return session, [SessionAsset.objects.get(document=older), SessionAsset.objects.get(document=newer)]


def ocr_text(session) -> str:
    return StudySession.objects.values_list("ocr_text", flat=True).get(pk=session.pk)


def test_a_snapshot_link_turned_into_another_type_on_the_session_page_stops_giving_the_ocr_text(
        admin_client, two_snapshots):
    """Only a deleted link was noticed: a newest snapshot re-typed (or pointed at another document) kept its text as
    the session's OCR text."""
    session, (older, newer) = two_snapshots
    data = session_form(session, **inline_management("assets", 2, initial=2),
                        **asset_row(0, older.document, "handwriting_png", asset=older),
                        **asset_row(1, newer.document, "reference", "prompt", asset=newer))
    response = admin_client.post(reverse("admin:study_studysession_change", args=[session.pk]), data)
    assert response.status_code == 302
    assert ocr_text(session) == "PAGE ONE"


def test_a_snapshot_linked_on_the_session_page_gives_its_text(admin_client, user):
    session = StudySessionFactory(user=user)
    document = DocumentFactory(user=user, extract_status="done", extracted_text="손글씨 답안")
    data = session_form(session, **inline_management("assets", 1), **asset_row(0, document, "handwriting_png"))
    assert admin_client.post(reverse("admin:study_studysession_change", args=[session.pk]), data).status_code == 302
    assert ocr_text(session) == "손글씨 답안"


def test_a_snapshot_link_moved_to_another_document_in_the_asset_admin_follows_it(admin_client, user, two_snapshots):
    session, (_older, newer) = two_snapshots
    replacement = DocumentFactory(user=user, extract_status="done", extracted_text="PAGE THREE")
    data = {"session": session.pk, "document": replacement.pk, "asset_type": "handwriting_png", "role": "prompt",
            "sort_order": 0}
    response = admin_client.post(reverse("admin:study_sessionasset_change", args=[newer.pk]), data)
    assert response.status_code == 302
    assert ocr_text(session) == "PAGE THREE"

    data["asset_type"] = "reference"  # no snapshot any more: the older one's text
    assert admin_client.post(reverse("admin:study_sessionasset_change", args=[newer.pk]), data).status_code == 302
    assert ocr_text(session) == "PAGE ONE"
