"""Quiz sessions and attempts in the admin: shown, never added or changed there (the quiz flow writes them and
finalize has counted them), so no admin write can break a constraint or a snapshot the API reads."""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from study.models import QuestionAttempt, QuizSession
from study.tests.factories import QuestionAttemptFactory, QuestionFactory, QuizSessionFactory, StudyTopicFactory

pytestmark = pytest.mark.django_db


def inline_management(prefix: str, total: int, initial: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def session_post(session: QuizSession, **changes) -> dict:
    """Every field of the change form as the page held it (which a stale or hand-made POST can still send)."""
    data = {
        "study_topic": session.study_topic_id, "status": session.status, "quiz_mode": session.quiz_mode,
        "target_per_subject": session.target_per_subject, "subject_filter": session.subject_filter,
        "question_ids": json.dumps(session.question_ids),
        "subject_distribution": json.dumps(session.subject_distribution),
        "source": session.source, "client_session_uuid": session.client_session_uuid or "",
        "correct_count": session.correct_count, "wrong_count": session.wrong_count,
        "unsure_count": session.unsure_count, "skipped_count": session.skipped_count,
        "summary": json.dumps(session.summary), "finished_at_0": "", "finished_at_1": "",
        "finalized_at_0": "", "finalized_at_1": "", **inline_management("attempts", 0),
    }
    return {**data, **changes}


@pytest.fixture
def done_quiz(user):
    """A finalized quiz (its snapshot empty: [] and {} are values) of a topic that has another quiz in progress."""
    topic = StudyTopicFactory(user=user)
    QuizSessionFactory(study_topic=topic, status="in_progress")
    return QuizSessionFactory(study_topic=topic, status="done", question_ids=[], correct_count=1,
                              finalized_at=timezone.now())


def test_a_quiz_session_is_shown_not_edited(admin_client, done_quiz):
    url = reverse("admin:study_quizsession_change", args=[done_quiz.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and b'name="status"' not in page.content  # a view, not a form
    # was an IntegrityError on study_quizsession_one_in_progress_uniq (the owner is read-only: Django skipped it)
    assert admin_client.post(url, session_post(done_quiz, status="in_progress")).status_code == 403
    assert admin_client.post(url, session_post(done_quiz, correct_count=5)).status_code == 403
    done_quiz.refresh_from_db()
    assert (done_quiz.status, done_quiz.correct_count) == ("done", 1)


def test_a_quiz_session_keeps_the_snapshot_the_api_reads(admin_client, api_client, user):
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user), question_ids=[])
    url = reverse("admin:study_quizsession_change", args=[session.pk])
    for snapshot in ('["x"]', '{"a": 1}', '"abc"', "[[1]]"):
        assert admin_client.post(url, session_post(session, question_ids=snapshot)).status_code == 403
    session.refresh_from_db()
    assert session.question_ids == []
    assert api_client.get(f"/api/quiz-sessions/{session.pk}").status_code == 200


def test_a_quiz_session_is_not_added_in_the_admin(admin_client, user):
    topic = StudyTopicFactory(user=user)
    data = session_post(QuizSession(study_topic=topic), user=user.pk, question_ids='["x"]')
    assert admin_client.post(reverse("admin:study_quizsession_add"), data).status_code == 403
    assert not QuizSession.objects.exists()


def test_the_attempts_inline_adds_nothing(admin_client, user):
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user))
    question = QuestionFactory(study_topic=session.study_topic)
    data = session_post(session, **inline_management("attempts", 1), **{
        "attempts-0-question": question.pk, "attempts-0-user": user.pk, "attempts-0-selected_choice": "1",
        "attempts-0-answered_at_0": "2025-01-01", "attempts-0-answered_at_1": "09:00:00"})
    # was a CHECK violation of study_questionattempt_outcome_chk (the read-only outcome stayed '')
    assert admin_client.post(reverse("admin:study_quizsession_change", args=[session.pk]), data).status_code == 403
    assert not QuestionAttempt.objects.exists()


def test_an_attempt_is_shown_not_edited_or_added(admin_client, user):
    attempt = QuestionAttemptFactory(quiz_session=QuizSessionFactory(study_topic=StudyTopicFactory(user=user)),
                                     selected_choice=1, outcome="correct")
    url = reverse("admin:study_questionattempt_change", args=[attempt.pk])
    assert admin_client.get(url).status_code == 200
    impossible = {"user": user.pk, "quiz_session": attempt.quiz_session_id, "question": attempt.question_id,
                  "selected_choice": 9, "is_unsure": "on", "outcome": "correct",
                  "answered_at_0": "2025-01-01", "answered_at_1": "09:00:00"}
    assert admin_client.post(url, impossible).status_code == 403
    attempt.refresh_from_db()
    assert (attempt.selected_choice, attempt.is_unsure) == (1, False)
    assert admin_client.post(reverse("admin:study_questionattempt_add"), impossible).status_code == 403
    assert QuestionAttempt.objects.count() == 1


@pytest.mark.parametrize("attempts", [5, 50])
def test_the_quiz_session_page_reads_its_attempts_at_once(admin_client, user, attempts,
                                                          django_assert_max_num_queries):
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user), status="done")
    question = QuestionFactory(study_topic=session.study_topic)
    QuestionAttemptFactory.create_batch(attempts, quiz_session=session, question=question)
    with django_assert_max_num_queries(8):
        page = admin_client.get(reverse("admin:study_quizsession_change", args=[session.pk]))
    assert page.status_code == 200
    assert page.content.count(reverse("admin:study_question_change", args=[question.pk]).encode()) == attempts


def test_attempts_are_listed_newest_recorded_first(admin_client, user):
    quiz = QuizSessionFactory(study_topic=StudyTopicFactory(user=user))
    first = QuestionAttemptFactory(quiz_session=quiz)
    # recorded later, answered earlier: as an ingest of an offline session records it
    later = QuestionAttemptFactory(quiz_session=quiz, answered_at=timezone.now() - timedelta(days=3))
    response = admin_client.get(reverse("admin:study_questionattempt_changelist"))
    assert [row.pk for row in response.context["cl"].result_list] == [later.pk, first.pk]


def test_the_recent_actions_of_the_admin_index_have_an_index():
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "django_admin_log")
    assert constraints["study_admin_log_user_time_idx"]["columns"] == ["user_id", "action_time"]
