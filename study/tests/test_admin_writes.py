"""Admin writes outside the card review queue: questions, topics, explanations, documents, bulk approval.

Each write that changes what the viewer sees must record its publish request (drained here through the eager
Celery kick on commit), deletes must be soft, and bad input must be a form error rather than a 500.
"""

import json
import unicodedata
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse
from django.utils import timezone

from publishing.models import Published, PublishOutbox
from study.admin import topics as topics_admin
from study.admin.base import CHANGED_MEANWHILE
from study.models import Document, MemoCard, Question, QuestionExplanation, StudySession, StudyTopic, TopicDocument
from study.services.cards import card_candidate_create
from study.services.questions import question_update
from study.services.topics import topic_delete, topic_update
from study.tests import factories as f
from study.tests.factories import DocumentFactory, QuestionFactory, StudySessionFactory, StudyTopicFactory
from studyserver.errors import NotFound

pytestmark = pytest.mark.django_db

NO_INLINES = {"document_links-TOTAL_FORMS": "0", "document_links-INITIAL_FORMS": "0",
              "document_links-MIN_NUM_FORMS": "0", "document_links-MAX_NUM_FORMS": "1000"}


@pytest.fixture
def drain(django_capture_on_commit_callbacks):
    """A context manager that runs its block's on-commit callbacks (the publish drain kick) when it ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def admin(admin_client, drain):
    """The admin client; each POST runs its on-commit callbacks, as the end of a real request would."""

    class Client:
        def get(self, *args, **kwargs):
            return admin_client.get(*args, **kwargs)

        def post(self, *args, **kwargs):
            with drain():
                return admin_client.post(*args, **kwargs)

    return Client()


@pytest.fixture
def question(user):
    topic = StudyTopicFactory(user=user, name="가스기사 필기")
    return QuestionFactory(study_topic=topic, question_text="LNG의 주성분은?", choices=["메탄", "에탄"],
                           correct_choice=1)


def published(kind: str, source_id: int) -> Published:
    return Published.objects.get(kind=kind, source_id=source_id)


def publish_now(drain, question: Question) -> None:
    """Put the question into the feed through its service, as the API would have."""
    with drain():
        question_update(question=question, data={})


def question_form(question: Question, **changes) -> dict:
    data = {
        "study_topic": question.study_topic_id,
        "subject": question.subject,
        "question_text": question.question_text,
        "choices": json.dumps(question.choices, ensure_ascii=False),
        "correct_choice": question.correct_choice,
        "explanation": question.explanation,
        "source": json.dumps(question.source),
    }
    return {**data, **changes}


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def action_names(response) -> list[str]:
    return [name for name, _ in response.context["action_form"].fields["action"].choices if name]


# --- questions ---------------------------------------------------------------------------------


def test_question_edit_publishes_the_new_content(admin, question):
    url = reverse("admin:study_question_change", args=[question.pk])
    response = admin.post(url, question_form(question, question_text="LNG의 주성분은 무엇인가?",
                                             choices='["메탄", "에탄", "프로판"]', correct_choice=1))
    assert response.status_code == 302, form_errors(response)
    payload = published("study_question", question.pk).payload
    assert payload["question_text"] == "LNG의 주성분은 무엇인가?"
    assert payload["choices"] == ["메탄", "에탄", "프로판"]
    assert not PublishOutbox.objects.exists()  # drained


def test_a_question_moved_to_another_topic_is_saved_and_published_under_it(admin, question):
    """Its cards move with it: a card's topic is its question's. They stayed under the old topic, counted in its
    stats, and the feed kept the old topic on them and on their progress."""
    from study.selectors.topics import topics_with_stats

    old = question.study_topic
    other = StudyTopicFactory(user=question.user, name="산업안전기사")
    cards = [f.MemoCardFactory(source_question=question, study_topic=old, source_kind="question") for _ in range(2)]
    progress = f.CardProgressFactory(card=cards[0])
    manual = f.MemoCardFactory(study_topic=old)  # another card of the old topic stays
    url = reverse("admin:study_question_change", args=[question.pk])
    response = admin.post(url, question_form(question, study_topic=other.pk))
    assert response.status_code == 302, form_errors(response)
    question.refresh_from_db()
    assert question.study_topic_id == other.pk
    other_pub = published("study_topic", other.pk).pub_id
    assert published("study_question", question.pk).payload["topic_pub_id"] == other_pub
    moved = MemoCard.objects.filter(source_question=question).values_list("study_topic", flat=True)
    assert list(moved) == [other.pk] * 2
    assert MemoCard.objects.get(pk=manual.pk).study_topic_id == old.pk
    assert {published("study_card", card.pk).payload["topic_pub_id"] for card in cards} == {other_pub}
    assert published("study_card_progress", progress.pk).payload["topic_pub_id"] == other_pub
    card_counts = dict(topics_with_stats(user=question.user).values_list("pk", "card_count"))
    assert (card_counts[old.pk], card_counts[other.pk]) == (1, 2)


def test_question_add_publishes(admin, user):
    topic = StudyTopicFactory(user=user)
    data = {"user": user.pk, "study_topic": topic.pk, "subject": "가스법규", "question_text": "부취제는?",
            "choices": '["THT", "TBM"]', "correct_choice": 2, "explanation": "", "source": "{}"}
    response = admin.post(reverse("admin:study_question_add"), data)
    assert response.status_code == 302, form_errors(response)
    created = Question.objects.get(question_text="부취제는?")
    assert published("study_question", created.pk).payload["correct_choice"] == 2
    # stored NFC, as the API stores it: an NFD spelling of the same subject is that subject
    data.update(subject=unicodedata.normalize("NFD", "가스법규"), question_text=unicodedata.normalize("NFD", "부취제?"))
    assert admin.post(reverse("admin:study_question_add"), data).status_code == 302
    assert Question.objects.filter(subject="가스법규", question_text="부취제?").exists()
    # the length limit counts the stored text, as the API's does: 200 syllables typed decomposed (600 characters)
    data.update(subject=unicodedata.normalize("NFD", "법" * 200))
    response = admin.post(reverse("admin:study_question_add"), data)
    assert response.status_code == 302, form_errors(response)
    assert Question.objects.filter(subject="법" * 200).exists()
    # and with its white space as the API keeps it: one subject, not one that only looks alike
    data.update(subject="가스\u00a0 법규\u200b", question_text="세 번째")
    assert admin.post(reverse("admin:study_question_add"), data).status_code == 302
    assert Question.objects.get(question_text="세 번째").subject == "가스 법규"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"correct_choice": 3}, "correct_choice"),
        ({"correct_choice": 0}, "correct_choice"),
        ({"choices": '"메탄"'}, "choices"),
        ({"choices": '["메탄"]'}, "choices"),
        ({"choices": '["메탄", ""]'}, "choices"),
        ({"source": "[1]"}, "source"),
        ({"subject": "\ufb2c" * 200}, "subject"),  # 600 characters in NFC, as it would be stored: was a 500
        # what the API refuses, the admin refuses (it stored them)
        ({"question_text": "가" * 20_001}, "question_text"),
        ({"explanation": "가" * 20_001}, "explanation"),
        ({"choices": json.dumps(["메탄", "에" * 2_001])}, "choices"),
        ({"source": '{"year": 123456789012345678901234567890}'}, "source"),
        ({"source": '{"exam": "' + "x" * 201 + '"}'}, "source"),
    ],
)
def test_invalid_question_is_a_form_error(admin, question, changes, field):
    url = reverse("admin:study_question_change", args=[question.pk])
    response = admin.post(url, question_form(question, **changes))
    assert response.status_code == 200
    assert field in form_errors(response)
    question.refresh_from_db()
    assert (question.choices, question.correct_choice) == (["메탄", "에탄"], 1)
    assert not PublishOutbox.objects.exists() and not Published.objects.exists()


def test_question_cannot_move_to_another_users_topic(admin, question, other_user):
    foreign = StudyTopicFactory(user=other_user)
    url = reverse("admin:study_question_change", args=[question.pk])
    response = admin.post(url, question_form(question, study_topic=foreign.pk))
    assert response.status_code == 200
    assert "study_topic" in form_errors(response)
    question.refresh_from_db()
    assert question.study_topic_id != foreign.pk


def test_question_delete_is_soft_and_tombstoned(admin, drain, question):
    publish_now(drain, question)
    assert published("study_question", question.pk).deleted is False
    response = admin.post(reverse("admin:study_question_delete", args=[question.pk]), {"post": "yes"})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.deleted_at is not None
    assert published("study_question", question.pk).deleted is True


def test_question_bulk_delete_is_a_soft_action(admin, drain, question):
    changelist = reverse("admin:study_question_changelist")
    assert "delete_selected" not in action_names(admin.get(changelist))
    publish_now(drain, question)
    response = admin.post(changelist, {"action": "soft_delete_selected", "post": "yes",
                                       "_selected_action": [question.pk]})
    assert response.status_code == 302
    question.refresh_from_db()
    assert question.deleted_at is not None
    assert published("study_question", question.pk).deleted is True


def test_deleted_at_is_read_only(admin, question):
    url = reverse("admin:study_question_change", args=[question.pk])
    assert "deleted_at" not in admin.get(url).context["adminform"].form.fields
    url = reverse("admin:study_studytopic_change", args=[question.study_topic_id])
    assert "deleted_at" not in admin.get(url).context["adminform"].form.fields


# --- explanations --------------------------------------------------------------------------------


def test_explanation_edit_and_delete_republish_the_question(admin, drain, question):
    explanation = QuestionExplanation.objects.create(user=question.user, question=question, text="메탄이다.")
    publish_now(drain, question)
    assert published("study_question", question.pk).payload["ai_explanation"] == "메탄이다."
    url = reverse("admin:study_questionexplanation_change", args=[explanation.pk])
    response = admin.post(url, {"text": "LNG의 주성분은 메탄(CH₄)이다.", "backend": "extractive", "passages": "[]"})
    assert response.status_code == 302, form_errors(response)
    assert published("study_question", question.pk).payload["ai_explanation"] == "LNG의 주성분은 메탄(CH₄)이다."
    response = admin.post(reverse("admin:study_questionexplanation_delete", args=[explanation.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert published("study_question", question.pk).payload["ai_explanation"] is None


def test_explanations_deleted_in_bulk_republish_their_questions(admin, drain, question):
    QuestionExplanation.objects.create(user=question.user, question=question, text="메탄이다.")
    publish_now(drain, question)
    admin.post(
        reverse("admin:study_questionexplanation_changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [question.ai_explanation.pk]},
    )
    assert not QuestionExplanation.objects.exists()
    assert published("study_question", question.pk).payload["ai_explanation"] is None


# --- topics --------------------------------------------------------------------------------------


def topic_form(topic: StudyTopic, **changes) -> dict:
    return {"name": topic.name, "study_type": topic.study_type, "description": topic.description, **NO_INLINES,
            **changes}


def test_topic_edit_publishes(admin, question):
    topic = question.study_topic
    response = admin.post(reverse("admin:study_studytopic_change", args=[topic.pk]),
                          topic_form(topic, name="가스기사 실기", study_type="language"))
    assert response.status_code == 302, form_errors(response)
    assert published("study_topic", topic.pk).payload == {"name": "가스기사 실기", "study_type": "language"}


def test_topic_add_publishes(admin, user):
    data = {"user": user.pk, "name": "JLPT N3", "study_type": "language", "description": "", **NO_INLINES}
    response = admin.post(reverse("admin:study_studytopic_add"), data)
    assert response.status_code == 302, form_errors(response)
    topic = StudyTopic.objects.get(name="JLPT N3")
    assert published("study_topic", topic.pk).payload == {"name": "JLPT N3", "study_type": "language"}


def test_duplicate_topic_name_is_a_form_error(admin, user):
    StudyTopicFactory(user=user, name="산업안전기사")
    topic = StudyTopicFactory(user=user, name="가스기사")
    response = admin.post(reverse("admin:study_studytopic_change", args=[topic.pk]),
                          topic_form(topic, name="산업안전기사"))
    assert response.status_code == 200
    assert "name" in form_errors(response)
    topic.refresh_from_db()
    assert topic.name == "가스기사"
    response = admin.post(reverse("admin:study_studytopic_add"),
                          {"user": user.pk, "name": "산업안전기사", "study_type": "", "description": "", **NO_INLINES})
    assert response.status_code == 200
    assert "name" in form_errors(response)
    assert StudyTopic.objects.filter(name="산업안전기사").count() == 1
    assert not PublishOutbox.objects.exists() and not Published.objects.exists()
    # the name of a deleted topic is free again
    StudyTopic.objects.filter(name="산업안전기사").update(deleted_at=timezone.now())
    response = admin.post(reverse("admin:study_studytopic_change", args=[topic.pk]),
                          topic_form(topic, name="산업안전기사"))
    assert response.status_code == 302, form_errors(response)
    assert published("study_topic", topic.pk).payload["name"] == "산업안전기사"


def test_a_topic_name_taken_after_the_add_form_checked_it_is_refused_with_a_message(admin, user, monkeypatch):
    checked = topics_admin.StudyTopicAdmin.save_form

    def someone_else_takes_the_name(self, request, form, change):  # after the form's check, before the save
        StudyTopic.objects.create(user=user, name="가스기사", study_type="certification")
        return checked(self, request, form, change)

    monkeypatch.setattr(topics_admin.StudyTopicAdmin, "save_form", someone_else_takes_the_name)
    url = reverse("admin:study_studytopic_add")
    response = admin.post(url, {"user": user.pk, "name": "가스기사", "study_type": "certification",
                                "description": "", **NO_INLINES}, follow=True)  # was an IntegrityError: a 500

    assert response.redirect_chain[0][0] == url  # the add form again, not a topic's page
    assert messages_of(response) == [f"{topics_admin.DUPLICATE_NAME_MESSAGE} Nothing was added."]
    assert StudyTopic.objects.filter(user=user, name="가스기사").count() == 1
    assert not LogEntry.objects.exists()
    assert not Published.objects.exists()  # the other request's topic is published by its own service


def test_an_nfd_spelling_of_a_topic_name_is_that_name(admin, user):
    StudyTopicFactory(user=user, name="가스기사")
    nfd = unicodedata.normalize("NFD", "가스기사")
    response = admin.post(reverse("admin:study_studytopic_add"),
                          {"user": user.pk, "name": nfd, "study_type": "", "description": "", **NO_INLINES})
    assert response.status_code == 200 and "name" in form_errors(response)  # the same name: taken
    response = admin.post(reverse("admin:study_studytopic_add"),
                          {"user": user.pk, "name": unicodedata.normalize("NFD", "연소공학"), "study_type": "",
                           "description": "", **NO_INLINES})
    assert response.status_code == 302, form_errors(response)
    assert StudyTopic.objects.filter(user=user, name="연소공학").exists()  # stored NFC, as the API stores it
    # the length limit counts the stored text, as the API's does: 200 syllables typed decomposed (600 characters)
    response = admin.post(reverse("admin:study_studytopic_add"),
                          {"user": user.pk, "name": unicodedata.normalize("NFD", "한" * 200), "study_type": "",
                           "description": "", **NO_INLINES})
    assert response.status_code == 302, form_errors(response)
    assert StudyTopic.objects.filter(user=user, name="한" * 200).exists()


def test_topic_delete_is_soft_and_tombstoned(admin, question):
    topic = question.study_topic
    admin.post(reverse("admin:study_studytopic_change", args=[topic.pk]), topic_form(topic, study_type="language"))
    assert published("study_topic", topic.pk).deleted is False
    confirm = admin.get(reverse("admin:study_studytopic_delete", args=[topic.pk]))
    change_url = reverse("admin:study_studytopic_change", args=[topic.pk])
    # no cascade is listed
    assert confirm.context["deleted_objects"] == [f'Study topic: <a href="{change_url}">{topic.name}</a>']
    response = admin.post(reverse("admin:study_studytopic_delete", args=[topic.pk]), {"post": "yes"})
    assert response.status_code == 302
    topic.refresh_from_db()
    assert topic.deleted_at is not None
    assert published("study_topic", topic.pk).deleted is True
    assert Question.objects.filter(pk=question.pk).exists()  # nothing cascaded


def test_a_topic_deleted_by_someone_else_during_the_delete_is_reported_not_logged(admin, user, monkeypatch):
    topic = StudyTopicFactory(user=user, name="가스기사")

    def someone_else_first(*, topic: StudyTopic) -> bool:  # between the page's read and its delete
        assert topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)) is True
        return topic_delete(topic=topic)

    monkeypatch.setattr(topics_admin, "topic_delete", someone_else_first)
    response = admin.post(reverse("admin:study_studytopic_delete", args=[topic.pk]), {"post": "yes"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("admin:study_studytopic_changelist")
    assert messages_of(response) == ["The study topic “가스기사” was already deleted; nothing was changed."]
    assert not LogEntry.objects.filter(object_id=str(topic.pk)).exists()


def test_a_topic_deleted_while_its_form_was_saved_changes_nothing_and_says_so(admin, user, monkeypatch):
    topic = StudyTopicFactory(user=user, name="가스기사")
    doc = DocumentFactory(user=user)

    def someone_else_first(*, topic: StudyTopic, data: dict) -> StudyTopic:
        assert topic_delete(topic=StudyTopic.objects.get(pk=topic.pk)) is True
        return topic_update(topic=topic, data=data)

    monkeypatch.setattr(topics_admin, "topic_update", someone_else_first)
    with_link = {**NO_INLINES, "document_links-TOTAL_FORMS": "1", "document_links-0-document": str(doc.pk)}
    url = reverse("admin:study_studytopic_change", args=[topic.pk])
    response = admin.post(url, {**topic_form(topic, name="가스산업기사"), **with_link}, follow=True)

    assert response.redirect_chain[0][0] == url  # back to the form, not to the list as after a save
    assert messages_of(response) == ["This topic was deleted meanwhile; nothing was changed."]
    topic.refresh_from_db()
    assert topic.name == "가스기사" and topic.deleted_at is not None
    assert not TopicDocument.objects.filter(topic=topic).exists()  # the inline was not saved either
    assert not LogEntry.objects.filter(object_id=str(topic.pk)).exists()


def test_a_topic_deleted_before_its_page_was_opened_is_shown_read_only(admin, user):
    """Only a topic deleted while its form was open was refused: one deleted before was renamed, and its inline gave
    it document links (the API answers 404, the link admin "This topic is deleted.")."""
    topic = StudyTopicFactory(user=user, name="가스기사", study_type="certification")
    doc = DocumentFactory(user=user)
    topic_delete(topic=topic)
    url = reverse("admin:study_studytopic_change", args=[topic.pk])

    page = admin.get(url)
    assert page.status_code == 200 and 'name="name"' not in page.content.decode()  # no field to edit
    with_link = {**NO_INLINES, "document_links-TOTAL_FORMS": "1", "document_links-0-document": str(doc.pk)}
    response = admin.post(url, {**topic_form(topic, name="가스산업기사", study_type="language"), **with_link})

    assert response.status_code == 403
    topic.refresh_from_db()
    assert (topic.name, topic.study_type) == ("가스기사", "certification")
    assert not TopicDocument.objects.filter(topic=topic).exists()


def test_the_topic_service_refuses_to_change_a_topic_deleted_before(user):
    topic = StudyTopicFactory(user=user, name="가스기사")
    topic_delete(topic=topic)
    with pytest.raises(NotFound):
        topic_update(topic=topic, data={"name": "가스산업기사"})
    assert StudyTopic.objects.get(pk=topic.pk).name == "가스기사"


def test_a_delete_that_went_through_is_logged_once(admin, user):
    topic = StudyTopicFactory(user=user, name="가스기사")
    response = admin.post(reverse("admin:study_studytopic_delete", args=[topic.pk]), {"post": "yes"}, follow=True)
    assert messages_of(response) == ["The study topic “가스기사” was deleted successfully."]
    entries = LogEntry.objects.filter(object_id=str(topic.pk))
    assert [(e.action_flag, e.object_repr) for e in entries] == [(DELETION, "가스기사")]


def test_topic_bulk_delete_is_a_soft_action(admin, user):
    topic = StudyTopicFactory(user=user)
    changelist = reverse("admin:study_studytopic_changelist")
    assert "delete_selected" not in action_names(admin.get(changelist))
    admin.post(changelist, {"action": "soft_delete_selected", "post": "yes", "_selected_action": [topic.pk]})
    topic.refresh_from_db()
    assert topic.deleted_at is not None


def test_bulk_soft_delete_asks_first_and_deletes_on_the_answer(admin, user):
    topics = StudyTopicFactory.create_batch(2, user=user)
    selected = [topic.pk for topic in topics]
    changelist = reverse("admin:study_studytopic_changelist")

    confirm = admin.post(changelist, {"action": "soft_delete_selected", "_selected_action": selected})

    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Are you sure you want to delete the selected study topics?" in page
    assert '<input type="hidden" name="action" value="soft_delete_selected">' in page
    assert StudyTopic.objects.filter(pk__in=selected, deleted_at__isnull=True).count() == 2  # nothing yet
    admin.post(changelist, {"action": "soft_delete_selected", "post": "yes", "_selected_action": selected})
    assert StudyTopic.objects.filter(pk__in=selected, deleted_at__isnull=True).count() == 0


def test_select_all_beyond_the_bulk_limit_deletes_nothing(admin, user, monkeypatch):
    from studyserver import admin as site_admin

    monkeypatch.setattr(site_admin, "BULK_ACTION_MAX", 2)
    topics = StudyTopicFactory.create_batch(3, user=user)
    changelist = reverse("admin:study_studytopic_changelist")
    response = admin.post(changelist, {"action": "soft_delete_selected", "post": "yes", "select_across": "1",
                                       "_selected_action": [topics[0].pk]}, follow=True)
    assert messages_of(response) == [
        "3 study topics are selected; one action takes at most 2. Nothing was changed: narrow the list with its "
        "filters."
    ]
    assert StudyTopic.objects.filter(user=user, deleted_at__isnull=True).count() == 3


# --- sessions ------------------------------------------------------------------------------------

SESSION_TEXTS = {"certification": "가스기사", "language_code": "한국어", "learning_level": "초급",
                 "subject": "가스법규", "topic": "용기 검사"}


def session_form(**changes) -> dict:
    return {"study_type": "certification", "mode": "copy", "metadata": "{}", "strokes_json": "{}",
            "repetition_count": 0, "schema_version": 1, "correct_count": 0, "incorrect_count": 0,
            "assets-TOTAL_FORMS": "0", "assets-INITIAL_FORMS": "0", "assets-MIN_NUM_FORMS": "0",
            "assets-MAX_NUM_FORMS": "1000", **changes}


def test_session_texts_are_stored_nfc_as_the_api_stores_them(admin, user):
    """/groups groups by these texts: an NFD spelling from the admin is the same certification, subject …"""
    decomposed = {field: unicodedata.normalize("NFD", text) for field, text in SESSION_TEXTS.items()}
    response = admin.post(reverse("admin:study_studysession_add"), session_form(user=user.pk, **decomposed))
    assert response.status_code == 302, form_errors(response)
    session = StudySessionFactory(user=user, certification="", subject="")
    response = admin.post(reverse("admin:study_studysession_change", args=[session.pk]), session_form(**decomposed))
    assert response.status_code == 302, form_errors(response)
    assert StudySession.objects.filter(user=user, **SESSION_TEXTS).count() == 2

    # 600 characters in NFC, as it would be stored: a form error, not a 500 (PostgreSQL) or a too long text
    response = admin.post(reverse("admin:study_studysession_change", args=[session.pk]),
                          session_form(**{**SESSION_TEXTS, "subject": "\ufb2c" * 200}))
    assert response.status_code == 200 and "subject" in form_errors(response)
    # 150 syllables fit (200): decomposed they are 300 characters, and the same subject once stored
    response = admin.post(reverse("admin:study_studysession_change", args=[session.pk]),
                          session_form(**{**SESSION_TEXTS, "subject": unicodedata.normalize("NFD", "가" * 150)}))
    assert response.status_code == 302, form_errors(response)
    assert StudySession.objects.get(pk=session.pk).subject == "가" * 150


@pytest.mark.parametrize(("metadata", "strokes"), [("[1, 2]", "{}"), ("{}", '"just a string"'), ("{}", "3")])
def test_session_metadata_and_strokes_are_json_objects_as_the_api_takes_them(admin, user, metadata, strokes):
    """The API documents and takes objects; a list or a text saved here reached every app's next sync."""
    session = StudySessionFactory(user=user, metadata={"pen": "apple"})
    response = admin.post(reverse("admin:study_studysession_change", args=[session.pk]),
                          session_form(metadata=metadata, strokes_json=strokes))
    assert response.status_code == 200
    wrong = "metadata" if metadata != "{}" else "strokes_json"
    assert form_errors(response) == {wrong: ['Enter a JSON object, such as {"key": "value"}.']}
    session.refresh_from_db()
    assert session.metadata == {"pen": "apple"}


def test_session_metadata_left_empty_is_an_empty_object(admin, user):
    session = StudySessionFactory(user=user, metadata={"pen": "apple"})
    response = admin.post(reverse("admin:study_studysession_change", args=[session.pk]),
                          session_form(metadata="", strokes_json='{"strokes": []}'))
    assert response.status_code == 302, form_errors(response)
    session.refresh_from_db()
    assert (session.metadata, session.strokes_json) == ({}, {"strokes": []})


# --- progress --------------------------------------------------------------------------------------


def card_progress_form(card, **changes) -> dict:
    return {"user": card.user_id, "card": card.pk, "last_outcome": "correct", "review_stage": 0,
            "last_reviewed_at_0": "2025-06-01", "last_reviewed_at_1": "09:00:00", **changes}


def test_card_progress_of_a_card_waiting_for_review_is_a_form_error(admin, user):
    """SPEC: a card waiting for review is not rated (the API answers not_reviewed); the admin added such a row and
    published it, pointing the viewer at a card it does not have."""
    pending = f.MemoCardFactory(user=user, needs_review=True)
    response = admin.post(reverse("admin:study_cardprogress_add"), card_progress_form(pending))
    assert response.status_code == 200
    assert form_errors(response) == {"card": ["This card waits for review: a card is rated once it is approved."]}
    assert not pending.progress.exists()

    approved = f.MemoCardFactory(user=user)
    response = admin.post(reverse("admin:study_cardprogress_add"), card_progress_form(approved))
    assert response.status_code == 302, form_errors(response)
    # a row whose card was flagged since stays editable (a due date put right)
    progress = approved.progress.get()
    MemoCard.objects.filter(pk=approved.pk).update(needs_review=True, flagged_by="reviewer",
                                                   flagged_at=timezone.now())
    response = admin.post(reverse("admin:study_cardprogress_change", args=[progress.pk]),
                          card_progress_form(approved, review_stage=1, due_at_0="2027-01-01", due_at_1="09:00:00"))
    assert response.status_code == 302, form_errors(response)


def test_progress_times_that_record_the_past_cannot_be_in_the_future(admin, user):
    card = f.MemoCardFactory(user=user)
    response = admin.post(reverse("admin:study_cardprogress_add"),
                          card_progress_form(card, last_reviewed_at_0="2999-01-01"))
    assert form_errors(response) == {"last_reviewed_at": ["This records what happened: it cannot be in the future."]}

    progress = f.QuestionProgressFactory(question__study_topic__user=user)
    response = admin.post(reverse("admin:study_questionprogress_change", args=[progress.pk]), {
        "user": user.pk, "question": progress.question_id, "review_stage": 0, "pattern_window_attempts": '["wrong"]',
        "pattern_state": "wrong", "last_outcome": "wrong", "last_attempted_at_0": "2999-01-01",
        "last_attempted_at_1": "09:00:00", "pattern_updated_at_0": "2025-06-01", "pattern_updated_at_1": "09:00:00",
    })
    assert form_errors(response) == {"last_attempted_at": [
        "This records what happened: it cannot be in the future."]}


@pytest.mark.parametrize(("ahead", "refused"), [(timedelta(hours=1), True), (timedelta(minutes=1), False)])
def test_a_review_time_ahead_of_the_clock_is_refused_beyond_the_skew(admin, user, ahead, refused):
    """An admin's clock a little ahead is allowed for (CLOCK_SKEW, five minutes); an hour ahead is the future."""
    card = f.MemoCardFactory(user=user)
    when = timezone.localtime(timezone.now() + ahead)
    typed = {"last_reviewed_at_0": when.strftime("%Y-%m-%d"), "last_reviewed_at_1": when.strftime("%H:%M:%S")}
    response = admin.post(reverse("admin:study_cardprogress_add"), card_progress_form(card, **typed))
    if refused:
        assert list(form_errors(response)) == ["last_reviewed_at"]
    else:
        assert response.status_code == 302
    assert card.progress.exists() is not refused


@pytest.mark.parametrize(("window", "state", "error_on"), [
    ('{"x": 1}', "wrong", "pattern_window_attempts"),  # not a list
    ('["wrong", "wrong", "wrong", "wrong"]', "chronic_wrong", "pattern_window_attempts"),  # more than 3
    ('["skipped"]', "wrong", "pattern_window_attempts"),  # a skip never enters the window
    ('["wrong", "correct"]', "stable", "pattern_state"),  # a bad answer in the window: recovered
    ('["correct", "wrong"]', "wrong", "pattern_state"),  # the previous one correct: regressed
    ("[]", "wrong", "pattern_state"),  # no answer, no pattern
    ('["wrong", "correct"]', "recovered", None),
    ('["correct", "wrong"]', "regressed", None),
])
def test_the_pattern_state_follows_from_its_window(admin, user, window, state, error_on):
    """SPEC "Finalize" 2: the window is the last ≤3 answers that were not skipped, and the pattern follows from it;
    the admin saved any window with any state."""
    progress = f.QuestionProgressFactory(question__study_topic__user=user)
    response = admin.post(reverse("admin:study_questionprogress_change", args=[progress.pk]), {
        "user": user.pk, "question": progress.question_id, "review_stage": 0, "pattern_window_attempts": window,
        "pattern_state": state, "last_outcome": "wrong", "last_attempted_at_0": "2025-06-01",
        "last_attempted_at_1": "09:00:00", "pattern_updated_at_0": "2025-06-01", "pattern_updated_at_1": "09:00:00",
    })
    progress.refresh_from_db()
    if error_on is None:
        assert response.status_code == 302, form_errors(response)
        assert (progress.pattern_window_attempts, progress.pattern_state) == (json.loads(window), state)
    else:
        assert list(form_errors(response)) == [error_on]
        assert progress.pattern_state is None


def test_soft_deleting_rows_deleted_already_says_nothing_changed(admin, user):
    cards = [f.MemoCardFactory(user=user, deleted_at=timezone.now()) for _ in range(2)]
    response = admin.post(reverse("admin:study_memocard_changelist"),
                          {"action": "soft_delete_selected", "_selected_action": [c.pk for c in cards]}, follow=True)
    assert messages_of(response) == ["The selected memo cards were deleted already; nothing was changed."]


def test_soft_deleting_topics_deleted_already_asks_nothing_and_changes_nothing(admin, user):
    """The topic list shows deleted topics too (its "deleted" filter): selecting only those is no deletion."""
    topics = [StudyTopicFactory(user=user, deleted_at=timezone.now()) for _ in range(2)]
    response = admin.post(
        reverse("admin:study_studytopic_changelist"),
        {"action": "soft_delete_selected", "_selected_action": [t.pk for t in topics]},
        follow=True,
    )
    assert messages_of(response) == ["The selected study topics were deleted already; nothing was changed."]


# --- quiz records ----------------------------------------------------------------------------------


def test_quiz_sessions_and_attempts_are_not_deleted_in_the_admin_but_go_with_their_user(admin, user):
    """A deleted attempt left its session's counts behind; a deleted viewer session took its client_uuid along,
    and the same ingest batch sent again moved spaced repetition a second time."""
    import uuid

    from django.contrib.auth import get_user_model

    from study.models import QuestionAttempt, QuizSession

    session = f.QuizSessionFactory(study_topic__user=user, status="done", correct_count=1,
                                   client_session_uuid=uuid.uuid4())
    attempt = f.QuestionAttemptFactory(quiz_session=session)
    for model, row in ((QuizSession, session), (QuestionAttempt, attempt)):
        opts = model._meta
        delete_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[row.pk])
        assert admin.get(delete_url).status_code == 403
        assert admin.post(delete_url, {"post": "yes"}).status_code == 403
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        listed = admin.get(changelist)
        assert listed.status_code == 200 and b'value="delete_selected"' not in listed.content
        admin.post(changelist, {"action": "delete_selected", "post": "yes", "_selected_action": [row.pk]})
        assert model.objects.filter(pk=row.pk).exists()
        assert delete_url not in admin.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change",
                                                   args=[row.pk])).content.decode()

    # deleting the learner still takes them along: the confirmation asks for no permission it cannot have
    response = admin.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=user.pk).exists()
    assert not QuizSession.objects.filter(pk=session.pk).exists()


# --- documents -----------------------------------------------------------------------------------


def test_document_delete_is_soft(admin, user):
    doc = DocumentFactory(user=user, extract_status="done")
    response = admin.post(reverse("admin:study_document_delete", args=[doc.pk]), {"post": "yes"})
    assert response.status_code == 302
    doc.refresh_from_db()
    assert doc.deleted_at is not None


def test_document_bulk_delete_is_a_soft_action(admin, user):
    docs = [DocumentFactory(user=user, extract_status="done") for _ in range(2)]
    changelist = reverse("admin:study_document_changelist")
    assert "delete_selected" not in action_names(admin.get(changelist))
    admin.post(changelist, {"action": "soft_delete_selected", "post": "yes",
                            "_selected_action": [d.pk for d in docs]})
    assert Document.objects.filter(pk__in=[d.pk for d in docs], deleted_at__isnull=False).count() == 2


def test_retry_extraction_leaves_done_documents_alone(admin, user):
    done = DocumentFactory(user=user, extract_status="done", extracted_text="kept")
    failed = DocumentFactory(user=user, extract_status="failed", extract_error="boom")
    response = admin.post(reverse("admin:study_document_changelist"),
                          {"action": "retry_extraction", "_selected_action": [done.pk, failed.pk]}, follow=True)
    assert "Extraction queued for 1 document(s)." in messages_of(response)
    done.refresh_from_db()
    failed.refresh_from_db()
    assert (done.extract_status, done.extracted_text) == ("done", "kept")
    assert failed.extract_status == "done"  # reset, then extracted by the eager task


def test_retry_extraction_queues_no_deleted_document(admin, user):
    deleted = DocumentFactory(user=user, deleted_at=timezone.now())  # still pending: it was never extracted
    response = admin.post(
        reverse("admin:study_document_changelist"),
        {"action": "retry_extraction", "_selected_action": [deleted.pk]},
        follow=True,
    )
    assert "Extraction queued for 0 document(s)." in messages_of(response)
    deleted.refresh_from_db()
    assert deleted.extract_status == "pending"


def test_retry_extraction_from_the_failed_filter_counts_what_it_was_given(admin, user):
    """The rows leave the "failed" filter when they are reset: counting the list afterwards said "-2 left"."""
    failed = [DocumentFactory(user=user, extract_status="failed", extract_error="boom") for _ in range(2)]
    DocumentFactory(user=user, extract_status="done", extracted_text="kept")
    changelist = reverse("admin:study_document_changelist") + "?extract_status__exact=failed"
    response = admin.post(changelist, {"action": "retry_extraction", "select_across": "1",
                                       "_selected_action": [failed[0].pk]}, follow=True)
    assert messages_of(response) == ["Extraction queued for 2 document(s)."]


def test_retry_extraction_beyond_the_bulk_limit_queues_nothing(admin, user, monkeypatch):
    from studyserver import admin as site_admin

    monkeypatch.setattr(site_admin, "BULK_ACTION_MAX", 1)
    failed = [DocumentFactory(user=user, extract_status="failed", extract_error="boom") for _ in range(2)]
    response = admin.post(reverse("admin:study_document_changelist"),
                          {"action": "retry_extraction", "_selected_action": [d.pk for d in failed]}, follow=True)
    assert messages_of(response) == [
        "2 documents are selected; one action takes at most 1. Nothing was changed: narrow the list with its filters."
    ]
    assert set(Document.objects.filter(pk__in=[d.pk for d in failed]).values_list("extract_status", flat=True)) == {
        "failed"}


# --- bulk approval of cards ----------------------------------------------------------------------


@pytest.fixture
def pending_cards(question):
    return [card_candidate_create(question=question, card_format="qa", cue=f"c{i}", fact=f"f{i}")
            for i in range(3)]


def test_approve_selected_refuses_select_across_but_approves_picked_cards(admin, pending_cards):
    changelist = reverse("admin:study_memocard_changelist")
    response = admin.post(changelist, {"action": "approve_selected", "select_across": "1",
                                       "_selected_action": [pending_cards[0].pk]}, follow=True)
    assert response.status_code == 200
    assert any("not offered" in m for m in messages_of(response))
    assert MemoCard.objects.filter(needs_review=False).count() == 0
    assert not PublishOutbox.objects.exists() and not Published.objects.exists()

    picked = [pending_cards[0].pk, pending_cards[2].pk]
    response = admin.post(changelist, {"action": "approve_selected", "select_across": "0",
                                       "_selected_action": picked}, follow=True)
    assert "Approved 2 cards." in messages_of(response)
    assert sorted(MemoCard.objects.filter(needs_review=False).values_list("id", flat=True)) == picked
    assert Published.objects.filter(kind="study_card", deleted=False).count() == 2



def test_card_progress_changed_or_deleted_in_the_admin_reaches_the_feed(admin, user):
    from study.tests.factories import CardProgressFactory

    progress = CardProgressFactory(review_stage=0, due_at=None)
    admin.post(reverse("admin:study_cardprogress_change", args=[progress.pk]), {
        "user": progress.user_id, "card": progress.card_id, "last_outcome": "correct", "review_stage": 2,
        "due_at_0": "2027-01-01", "due_at_1": "09:00:00", "last_reviewed_at_0": "2025-12-01",
        "last_reviewed_at_1": "09:00:00",
    })
    row = published("study_card_progress", progress.pk)
    assert row.payload["review_stage"] == 2 and row.payload["due_at"].startswith("2027-01-01")

    admin.post(reverse("admin:study_cardprogress_delete", args=[progress.pk]), {"post": "yes"})
    assert published("study_card_progress", progress.pk).deleted


def test_card_progress_deleted_in_bulk_in_the_admin_is_tombstoned_in_the_feed(admin, drain, user):
    from publishing import services
    from study.tests.factories import CardProgressFactory

    rows = [CardProgressFactory(due_at=None) for _ in range(2)]
    kept = CardProgressFactory(due_at=None)
    with drain():
        services.publish_request_many(kind="study_card_progress", source_ids=[p.pk for p in (*rows, kept)])
    admin.post(
        reverse("admin:study_cardprogress_changelist"),
        {"action": "delete_selected", "post": "yes", "_selected_action": [p.pk for p in rows]},
    )
    assert all(published("study_card_progress", p.pk).deleted for p in rows)
    assert not published("study_card_progress", kept.pk).deleted


def test_a_deleted_question_is_shown_read_only(admin, question):
    question.deleted_at = timezone.now()
    question.save(update_fields=["deleted_at"])
    url = reverse("admin:study_question_change", args=[question.pk])
    page = admin.get(url)
    assert page.status_code == 200 and b'name="question_text"' not in page.content  # a view, not a form
    assert admin.post(url, question_form(question, question_text="고침")).status_code == 403
    question.refresh_from_db()
    assert question.question_text == "LNG의 주성분은?"


@pytest.mark.parametrize(("model_name", "make"), [
    ("studytopic", lambda user: f.StudyTopicFactory(user=user, name="가스기사 필기")),
    ("question", lambda user: f.QuestionFactory(study_topic=f.StudyTopicFactory(user=user), subject="가스기사 필기")),
    ("document", lambda user: f.DocumentFactory(user=user, title="가스기사 필기")),
    ("studysession", lambda user: f.StudySessionFactory(user=user, subject="가스기사 필기")),
    ("memocard", lambda user: f.MemoCardFactory(user=user, cue="가스기사 필기")),
])
def test_a_changelist_search_typed_decomposed_finds_the_composed_text(admin_client, user, model_name, make):
    """Texts are stored NFC; a search term pasted from a macOS file name (NFD) is looked for in NFC too."""
    row = make(user)
    term = unicodedata.normalize("NFD", "기사 필기")
    response = admin_client.get(reverse(f"admin:study_{model_name}_changelist"), {"q": term})
    assert response.status_code == 200
    assert [obj.pk for obj in response.context["cl"].result_list] == [row.pk]


@pytest.mark.parametrize(("model_name", "make"), [
    ("memocard", lambda user, text: f.MemoCardFactory(user=user, cue=text)),
    ("studysession", lambda user, text: f.StudySessionFactory(user=user, ocr_text=text)),
    ("studytopic", lambda user, text: f.StudyTopicFactory(user=user, description=text)),
])
def test_a_changelist_search_still_finds_a_text_stored_decomposed(admin_client, user, model_name, make):
    """Cues, OCR texts and descriptions are stored as sent: the term pasted as it was stored finds them too, and so
    does the term typed composed, as a reviewer types it."""
    decomposed = unicodedata.normalize("NFD", "가스기사 필기")
    row = make(user, decomposed)
    for term in (decomposed, "기사 필기"):
        response = admin_client.get(reverse(f"admin:study_{model_name}_changelist"), {"q": term})
        assert [obj.pk for obj in response.context["cl"].result_list] == [row.pk], term


@pytest.mark.parametrize(("action", "pending_before"), [("approve_selected", True), ("flag_selected", False)])
def test_bulk_card_actions_take_a_few_queries_whatever_the_selection(admin_client, user, action, pending_before,
                                                                     django_assert_max_num_queries):
    """One locked read, one UPDATE, one outbox INSERT and one history INSERT for the lot (it was five statements
    per card: 515 for 100 cards); each card still gets its history entry and its publish request."""
    from django.contrib.admin.models import LogEntry

    cards = f.MemoCardFactory.create_batch(30, user=user, needs_review=pending_before,
                                           flagged_by="user" if pending_before else "",
                                           flagged_at=timezone.now() if pending_before else None,
                                           reviewed_at=None if pending_before else timezone.now())
    ids = [card.pk for card in cards]
    with django_assert_max_num_queries(25):  # the admin's own reads included; per card it would be 150+
        response = admin_client.post(reverse("admin:study_memocard_changelist"),
                                     {"action": action, "_selected_action": ids})
    assert response.status_code == 302
    assert MemoCard.objects.filter(pk__in=ids, needs_review=not pending_before).count() == 30
    assert LogEntry.objects.filter(object_id__in=[str(pk) for pk in ids]).count() == 30
    assert PublishOutbox.objects.filter(kind="study_card", source_id__in=ids).count() == 30


class _FormValues(HTMLParser):
    """The values a browser posts from an admin change form left as rendered."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in {"submit", "checkbox"}:
            self.values[name] = a.get("value") or ""
        elif tag == "input" and name and "checked" in a:
            self.values[name] = "on"
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value") or ""
        elif tag == "textarea" and name:
            self._textarea, self.values[name] = name, ""

    def handle_endtag(self, tag) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data) -> None:
        if self._textarea:
            self.values[self._textarea] += data.removeprefix("\n")


def as_rendered(admin_client, url: str) -> dict[str, str]:
    parser = _FormValues()
    parser.feed(admin_client.get(url).content.decode())
    return parser.values


@pytest.mark.parametrize("model", ["cardprogress", "questionprogress"])
def test_a_progress_page_saved_as_it_is_changes_nothing(admin, user, model):
    """The date-time widgets show no microseconds: the page's save wrote the cut times back (moving due times back
    by up to a second) and republished the card progress to every viewer, while the history said nothing changed."""
    now = timezone.now().replace(microsecond=777567)
    if model == "cardprogress":
        row = f.CardProgressFactory(review_stage=1, due_at=now + timedelta(days=3), last_reviewed_at=now)
    else:
        row = f.QuestionProgressFactory(pattern_state="wrong", pattern_window_attempts=["wrong"],
                                        last_attempted_at=now, pattern_updated_at=now,
                                        review_stage=1, due_at=now + timedelta(days=3), last_reviewed_at=now)
    url = reverse(f"admin:study_{model}_change", args=[row.pk])
    shown = as_rendered(admin, url)
    stored = type(row).objects.filter(pk=row.pk).values().get()
    feed = list(Published.objects.values_list("kind", "source_id", "seq"))

    response = admin.post(url, shown)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert type(row).objects.filter(pk=row.pk).values().get() == stored
    assert list(Published.objects.values_list("kind", "source_id", "seq")) == feed  # nothing published again

    assert admin.post(url, {**shown, "review_stage": "2"}).status_code == 302  # one field: only it is written
    changed = type(row).objects.filter(pk=row.pk).values().get()
    assert changed["review_stage"] == 2 and changed["due_at"] == stored["due_at"] == now + timedelta(days=3)
    assert changed["last_reviewed_at"] == now
    if model == "cardprogress":
        assert published("study_card_progress", row.pk).payload["review_stage"] == 2


@pytest.mark.parametrize("model", ["cardprogress", "questionprogress"])
def test_a_progress_page_that_changes_a_field_moves_updated_at(admin, user, model):
    """Only the changed fields are written: updated_at (auto_now) is written only when named, and left out, a row
    changed in the admin kept the time of its last change before, as if the admin had not touched it."""
    if model == "cardprogress":
        row = f.CardProgressFactory(review_stage=1, due_at=timezone.now() + timedelta(days=3))
    else:
        row = f.QuestionProgressFactory(review_stage=1, due_at=timezone.now() + timedelta(days=3))
    yesterday = timezone.now() - timedelta(days=1)
    type(row).objects.filter(pk=row.pk).update(updated_at=yesterday)
    url = reverse(f"admin:study_{model}_change", args=[row.pk])
    shown = as_rendered(admin, url)
    before = timezone.now()

    assert admin.post(url, {**shown, "review_stage": "2"}).status_code == 302
    row.refresh_from_db()
    assert row.review_stage == 2 and row.updated_at >= before


# --- a page saved after the row changed meanwhile (ShownValuesForm) ------------------------------


def crlf(values: dict[str, str]) -> dict[str, str]:
    """`values` as a browser posts them: a textarea's line breaks come as CRLF (a hidden input keeps them as shown)."""
    return {name: value if name.startswith("initial-") else value.replace("\n", "\r\n")
            for name, value in values.items()}


def test_saving_a_session_page_keeps_the_ocr_text_the_extraction_wrote_meanwhile(admin, user):
    """The page was opened before the snapshot's OCR finished; the staff member changed the review state only. The
    page's empty OCR text was written back over the extraction's."""
    from study.services.sessions import sessions_ocr_text_fill

    session = StudySessionFactory(user=user, source_text="줄 하나\n줄 둘")
    document = DocumentFactory(user=user, extract_status="pending")
    f.SessionAssetFactory(session=session, document=document)
    url = reverse("admin:study_studysession_change", args=[session.pk])
    shown = as_rendered(admin, url)
    assert shown["ocr_text"] == "" and "initial-ocr_text" in shown

    Document.objects.filter(pk=document.pk).update(extract_status="done", extracted_text="LNG -162도",
                                                   extracted_at=timezone.now())
    assert sessions_ocr_text_fill(session_ids=[session.pk]) == 1

    response = admin.post(url, crlf({**shown, "review_state": "weak"}))
    assert response.status_code == 302, form_errors(response)
    session.refresh_from_db()
    assert (session.review_state, session.ocr_text) == ("weak", "LNG -162도")
    assert session.source_text == "줄 하나\n줄 둘"  # untouched, though posted with CRLF: not an edit


def test_saving_a_question_page_keeps_the_learners_fix_made_meanwhile(admin, drain, question):
    """The learner fixed the text in the app while the page was open; the staff member changed the subject. The
    page's old text was written back and published to every viewer."""
    question.question_text = "LNG의\n주성분은?"
    question.save()
    url = reverse("admin:study_question_change", args=[question.pk])
    shown = as_rendered(admin, url)
    fixed = "LNG의\n주성분은 무엇인가?"
    with drain():  # the app's PATCH, published
        question_update(question=Question.objects.get(pk=question.pk), data={"question_text": fixed})

    response = admin.post(url, crlf({**shown, "subject": "가스일반"}))
    assert response.status_code == 302, form_errors(response)
    question.refresh_from_db()
    assert (question.subject, question.question_text) == ("가스일반", "LNG의\n주성분은 무엇인가?")
    assert published("study_question", question.pk).payload["question_text"] == "LNG의\n주성분은 무엇인가?"


def test_a_field_changed_both_on_the_page_and_meanwhile_is_a_form_error(admin, question):
    url = reverse("admin:study_question_change", args=[question.pk])
    shown = as_rendered(admin, url)
    question_update(question=Question.objects.get(pk=question.pk), data={"question_text": "LNG의 주성분은 무엇인가?"})

    response = admin.post(url, {**shown, "question_text": "LNG의 주된 성분은?", "subject": "가스일반"})
    assert response.status_code == 200
    assert form_errors(response) == {"question_text": [CHANGED_MEANWHILE]}
    page = response.content.decode()
    assert "LNG의 주된 성분은?" in page  # what was typed is kept on the page
    question.refresh_from_db()
    assert (question.question_text, question.subject) == ("LNG의 주성분은 무엇인가?", shown["subject"])  # none saved
    # the same value typed on both sides is no conflict
    response = admin.post(url, {**shown, "question_text": "LNG의 주성분은 무엇인가?", "subject": "가스일반"})
    assert response.status_code == 302, form_errors(response)


def test_saving_a_topic_page_keeps_the_description_changed_meanwhile(admin, user):
    topic = StudyTopicFactory(user=user, name="가스기사", description="")
    url = reverse("admin:study_studytopic_change", args=[topic.pk])
    shown = as_rendered(admin, url)
    topic_update(topic=StudyTopic.objects.get(pk=topic.pk), data={"description": "2027년 1회 대비"})

    response = admin.post(url, {**shown, "name": "가스기사 필기"})
    assert response.status_code == 302, form_errors(response)
    topic.refresh_from_db()
    assert (topic.name, topic.description) == ("가스기사 필기", "2027년 1회 대비")


def test_saving_a_progress_page_keeps_what_a_quiz_answer_wrote_meanwhile(admin, user):
    due = timezone.now().replace(microsecond=0) + timedelta(days=3)
    row = f.QuestionProgressFactory(review_stage=1, due_at=due, last_outcome="wrong")
    url = reverse("admin:study_questionprogress_change", args=[row.pk])
    shown = as_rendered(admin, url)
    type(row).objects.filter(pk=row.pk).update(last_outcome="correct", due_at=due + timedelta(days=4))

    response = admin.post(url, {**shown, "review_stage": "2"})
    assert response.status_code == 302, form_errors(response)
    row.refresh_from_db()
    assert (row.review_stage, row.last_outcome, row.due_at) == (2, "correct", due + timedelta(days=4))


def test_a_snapshot_unlinked_on_the_session_page_gives_the_session_no_ocr_text(admin, user):
    """The session page's inline deletes a link as the API's unlink does: its snapshot's text goes with it."""
    from study.tests.api.test_snapshots import EXTRACTED, session_with_two_snapshots

    session, _older, newer = session_with_two_snapshots(user, older=EXTRACTED[0], newer=EXTRACTED[1])
    assert session.ocr_text == "PAGE TWO"
    url = reverse("admin:study_studysession_change", args=[session.pk])
    shown = as_rendered(admin, url)
    newest_link = str(session.assets.get(document=newer).pk)
    newest = next(key.removesuffix("-id") for key, value in shown.items()
                  if key.startswith("assets-") and key.endswith("-id") and value == newest_link)

    response = admin.post(url, {**shown, f"{newest}-DELETE": "on"})
    assert response.status_code == 302, form_errors(response)
    session.refresh_from_db()
    assert (session.assets.count(), session.ocr_text) == (1, "PAGE ONE")
