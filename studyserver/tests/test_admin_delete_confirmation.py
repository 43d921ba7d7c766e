"""Delete confirmations count what a delete removes instead of naming every row of it: Django's own page named and
linked each of a learner's 50,000 attempts (20–30 s, 6 MB)."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from study.models import MemoCard, Question, QuestionAttempt, QuizSession, SessionAsset, StudySession, StudyTopic
from study.tests.factories import (
    CardEvidenceFactory,
    MemoCardFactory,
    QuestionAttemptFactory,
    QuestionFactory,
    QuizSessionFactory,
    SessionAssetFactory,
    StudySessionFactory,
    StudyTopicFactory,
    UserFactory,
)
from studyserver import admin as site_admin

pytestmark = pytest.mark.django_db


def learner_with_history(size: int):
    """A learner with `size` questions, one finished quiz answering each, and `size` cards with evidence."""
    user = UserFactory()
    topic = StudyTopicFactory(user=user)
    quiz = QuizSessionFactory(study_topic=topic, status="done", finalized_at=timezone.now())
    for question in QuestionFactory.create_batch(size, study_topic=topic):
        QuestionAttemptFactory(quiz_session=quiz, question=question)
    for card in MemoCardFactory.create_batch(size, user=user, study_topic=topic):
        CardEvidenceFactory(card=card)
    return user


def summary_line(model, count: int) -> str:
    return f"<li>{str(model._meta.verbose_name_plural).capitalize()}: {count}</li>"


def test_a_user_delete_page_counts_the_rows_it_removes_and_names_only_the_user(admin_client):
    from study.models import TopicDocument
    from study.tests.factories import DocumentFactory, TopicDocumentFactory

    learner = learner_with_history(4)
    attempt = QuestionAttempt.objects.filter(user=learner).first()
    # reached along its user, its topic and its document: one row (the collector's querysets counted it 3 times)
    TopicDocumentFactory(topic=StudyTopic.objects.get(user=learner), document=DocumentFactory(user=learner))

    response = admin_client.get(reverse("admin:auth_user_delete", args=[learner.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for model, count in [(QuestionAttempt, 4), (Question, 4), (MemoCard, 4), (QuizSession, 1), (StudyTopic, 1),
                         (TopicDocument, 1)]:
        assert summary_line(model, count) in page
    assert f'<a href="{reverse("admin:auth_user_change", args=[learner.pk])}">{learner.username}</a>' in page
    assert reverse("admin:study_questionattempt_change", args=[attempt.pk]) not in page  # not one link per row


def test_the_user_delete_page_reads_as_much_for_a_long_history_as_for_a_short_one(admin_client):
    short, long = learner_with_history(2), learner_with_history(25)
    sizes, queries = [], []
    for learner in (short, long):
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse("admin:auth_user_delete", args=[learner.pk]))
        sizes.append(len(response.content))
        queries.append(len(captured))
    assert queries[0] == queries[1]
    assert abs(sizes[1] - sizes[0]) < 200  # the counts' digits and the name differ, nothing grows per row


def test_confirming_the_user_delete_removes_the_user_and_what_cascades(admin_client):
    learner = learner_with_history(3)
    response = admin_client.post(reverse("admin:auth_user_delete", args=[learner.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not QuestionAttempt.objects.filter(user_id=learner.pk).exists()
    assert not MemoCard.objects.filter(user_id=learner.pk).exists()


def test_delete_selected_names_the_first_rows_and_counts_the_rest(admin_client, monkeypatch):
    monkeypatch.setattr(site_admin, "DELETE_LISTED_MAX", 3)
    user = UserFactory()
    sessions = [SessionAssetFactory(session__user=user).session for _ in range(5)]
    changelist = reverse("admin:study_studysession_changelist")
    selected = [session.pk for session in sessions]

    response = admin_client.post(changelist, {"action": "delete_selected", "_selected_action": selected})

    page = response.content.decode()
    assert "… and 2 more study sessions" in page
    assert summary_line(StudySession, 5) in page and summary_line(SessionAsset, 5) in page
    assert len(re.findall(r'href="/admin/study/studysession/\d+/change/"', page)) == 3
    admin_client.post(changelist, {"action": "delete_selected", "_selected_action": selected, "post": "yes"})
    assert not StudySession.objects.filter(pk__in=selected).exists()


def test_a_related_kind_the_staff_user_may_not_delete_blocks_the_delete(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_user", "delete_user", "delete_quizsession", "view_quizsession"]))
    client.force_login(staff)
    learner = learner_with_history(2)
    url = reverse("admin:auth_user_delete", args=[learner.pk])

    page = client.get(url).content.decode()

    assert "permission to delete the following types of objects" in page
    assert "<li>question attempt</li>" in page and "<li>quiz session</li>" not in page
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert QuestionAttempt.objects.filter(user_id=learner.pk).count() == 2


def test_kinds_with_no_row_to_delete_need_no_permission(client):
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "delete_user"]))
    client.force_login(staff)
    newcomer = UserFactory()  # no topics, cards or attempts yet
    url = reverse("admin:auth_user_delete", args=[newcomer.pk])
    assert "permission to delete the following types of objects" not in client.get(url).content.decode()
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not type(newcomer).objects.filter(pk=newcomer.pk).exists()


def test_a_soft_delete_page_names_only_the_rows_themselves(admin_client):
    topic = StudyTopicFactory()
    QuestionFactory.create_batch(3, study_topic=topic)
    page = admin_client.get(reverse("admin:study_studytopic_delete", args=[topic.pk])).content.decode()
    assert summary_line(StudyTopic, 1) in page
    assert "Questions:" not in page


def test_delete_selected_of_more_rows_than_one_action_takes_deletes_nothing(admin_client, monkeypatch):
    # Its confirmation would post every id back, and Django reads at most 1,000 fields of a request.
    monkeypatch.setattr(site_admin, "BULK_ACTION_MAX", 2)
    sessions = StudySessionFactory.create_batch(3, user=UserFactory())
    response = admin_client.post(reverse("admin:study_studysession_changelist"), {
        "action": "delete_selected", "select_across": "1", "_selected_action": [sessions[0].pk]}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "3 study sessions are selected; one action takes at most 2. Nothing was changed: narrow the list with its "
        "filters."]
    assert StudySession.objects.count() == 3


def rows_a_delete_removes(model, pks) -> dict[str, int]:
    """What deleting really removes, per model label: the delete is done and undone."""
    from django.db import transaction

    with transaction.atomic():
        _total, removed = model.objects.filter(pk__in=pks).delete()
        transaction.set_rollback(True)
    return {label: n for label, n in removed.items() if n}


def test_the_counts_are_the_rows_a_delete_removes_without_reading_them():
    """Rows reached along several keys (an attempt: its user, quiz, question) count once (the collector's own
    querysets counted a topic's document link three times); rows whose key is set to NULL (a card of a deleted
    question) do not count; another learner's rows do not count."""
    from rest_framework.authtoken.models import Token

    from study.tests.factories import (
        CardProgressFactory,
        DocumentFactory,
        QuestionProgressFactory,
        SessionAssetFactory,
        StudySessionFactory,
        TopicDocumentFactory,
    )

    learner = learner_with_history(3)
    learner_with_history(2)  # another learner's rows: the delete leaves them, and they must not count
    topic = StudyTopic.objects.filter(user=learner).first()
    TopicDocumentFactory(topic=topic, document=DocumentFactory(user=learner))
    SessionAssetFactory(session=StudySessionFactory(user=learner, study_topic=topic),
                        document=DocumentFactory(user=learner))
    QuestionProgressFactory(question=Question.objects.filter(user=learner).first())
    CardProgressFactory(card=MemoCard.objects.filter(user=learner).first())
    Token.objects.create(user=learner)
    question = Question.objects.filter(user=learner).first()
    MemoCardFactory(user=learner, source_question=question)  # SET_NULL: kept when only the question goes

    for model, pks in [(type(learner), [learner.pk]), (Question, [question.pk]), (StudyTopic, [topic.pk]),
                       (QuizSession, list(QuizSession.objects.filter(user=learner).values_list("pk", flat=True)))]:
        counted = site_admin.cascade_counts(model, pks, using="default")
        assert {m._meta.label: n for m, n in counted.items() if n} == rows_a_delete_removes(model, pks)


def test_a_learners_delete_page_counts_in_a_few_queries_whatever_their_history(admin_client):
    learner = learner_with_history(30)
    with CaptureQueriesContext(connection) as captured:
        admin_client.get(reverse("admin:auth_user_delete", args=[learner.pk]))
    listing = [q["sql"] for q in captured.captured_queries if '"study_questionattempt"' in q["sql"]]
    assert len(listing) == 1 and listing[0].startswith("SELECT COUNT(*)")  # counted, never read row by row
