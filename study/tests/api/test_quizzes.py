"""Quiz sessions over the API: start, current, attempts, finish, abandon, detail, list, isolation, races."""

import threading
import unicodedata
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from study.models import QuestionAttempt, QuestionProgress, QuizSession, SessionAnalysis
from study.services.quizzes import quiz_attempt_record
from study.tests.factories import (
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    StudyTopicFactory,
)
from studyserver.testing import hold_until_another_waits, run_concurrently

pytestmark = pytest.mark.django_db
URL = "/api/quiz-sessions"


@pytest.fixture
def topic(user):
    return StudyTopicFactory(user=user)


def start(client, topic, **body):
    return client.post(URL, {"study_topic_id": topic.id, **body}, format="json")


def answer(client, session_id, question_id, **body):
    return client.post(f"{URL}/{session_id}/attempts", {"question_id": question_id, **body}, format="json")


def test_start_picks_up_to_target_per_subject_and_hides_answers(api_client, topic):
    QuestionFactory.create_batch(5, study_topic=topic, subject="가스안전관리")
    QuestionFactory.create_batch(2, study_topic=topic, subject="연소공학")
    QuestionFactory(study_topic=topic, subject="연소공학", deleted_at=timezone.now())
    QuestionFactory(subject="연소공학")  # another user's topic

    response = start(api_client, topic, target_per_subject=3)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "in_progress" and body["cursor"] == 0 and body["study_topic_id"] == topic.id
    assert body["subject_distribution"] == {"가스안전관리": 3, "연소공학": 2}
    assert len(body["question_ids"]) == 5 == len(set(body["question_ids"]))
    assert [q["id"] for q in body["questions"]] == body["question_ids"]
    for question in body["questions"]:
        assert "correct_choice" not in question and "explanation" not in question
        assert question["choices"]
    assert body["summary"] is None and body["analysis"] is None
    session = QuizSession.objects.get(pk=body["id"])
    assert session.question_ids == body["question_ids"]


def test_start_subject_filter_and_wrong_only(api_client, user, topic):
    wrong = QuestionFactory(study_topic=topic, subject="A")
    unsure = QuestionFactory(study_topic=topic, subject="A")
    right = QuestionFactory(study_topic=topic, subject="A")
    other_subject = QuestionFactory(study_topic=topic, subject="B")
    QuestionProgressFactory(question=wrong, last_outcome="wrong")
    QuestionProgressFactory(question=unsure, last_outcome="unsure")
    QuestionProgressFactory(question=right, last_outcome="correct")
    QuestionProgressFactory(question=other_subject, last_outcome="wrong")

    body = start(api_client, topic, subject_filter="A", wrong_only=True).json()
    assert sorted(body["question_ids"]) == sorted([wrong.id, unsure.id])


def test_the_subject_filter_matches_whatever_the_unicode_form(api_client, topic):
    """Subjects are stored NFC; an app on a system that types decomposed Hangul (NFD) filters by the same subject."""
    wanted = QuestionFactory(study_topic=topic, subject="가스안전관리")
    QuestionFactory(study_topic=topic, subject="연소공학")

    response = start(api_client, topic, subject_filter=unicodedata.normalize("NFD", "가스안전관리"))

    assert response.status_code == 201, response.json()
    assert response.json()["question_ids"] == [wanted.id]
    assert QuizSession.objects.get(pk=response.json()["id"]).subject_filter == "가스안전관리"


def test_start_review_due_picks_due_questions(api_client, topic):
    now = timezone.now()
    overdue, due_now, later, _never = QuestionFactory.create_batch(4, study_topic=topic)
    QuestionProgressFactory(question=overdue, due_at=now - timedelta(days=2))
    QuestionProgressFactory(question=due_now, due_at=now - timedelta(minutes=1))
    QuestionProgressFactory(question=later, due_at=now + timedelta(days=1))
    body = start(api_client, topic, quiz_mode="review_due").json()
    assert body["question_ids"] == [overdue.id, due_now.id]


def test_review_due_takes_the_most_overdue_first_whatever_the_ids(api_client, topic):
    now = timezone.now()
    slightly, most, middle = QuestionFactory.create_batch(3, study_topic=topic)  # ids in the other order
    for question, days in [(slightly, 1), (most, 9), (middle, 4)]:
        QuestionProgressFactory(question=question, due_at=now - timedelta(days=days))
    body = start(api_client, topic, quiz_mode="review_due", target_per_subject=2).json()
    assert body["question_ids"] == [most.id, middle.id]


def test_review_due_asks_the_most_overdue_first_across_subjects(api_client, topic):
    """Grouped by subject, a question a month overdue came after another subject's due an hour ago: a learner who
    stopped early had reviewed the least urgent."""
    now = timezone.now()
    hour, month, week = (QuestionFactory(study_topic=topic, subject=subject) for subject in ("가", "나", "가"))
    for question, overdue in [(hour, timedelta(hours=1)), (month, timedelta(days=30)), (week, timedelta(days=7))]:
        QuestionProgressFactory(question=question, due_at=now - overdue)
    body = start(api_client, topic, quiz_mode="review_due").json()
    assert body["question_ids"] == [month.id, week.id, hour.id]
    assert body["subject_distribution"] == {"가": 2, "나": 1}


def test_start_without_eligible_question_is_400(api_client, topic):
    response = start(api_client, topic, quiz_mode="review_due")
    assert response.status_code == 400 and response.json()["error_code"] == "invalid"
    assert start(api_client, topic).status_code == 400
    assert not QuizSession.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"quiz_mode": "sometimes"},
        {"target_per_subject": 0},
        {"target_per_subject": 10**30},
        {"wrong_only": "perhaps"},
        {"study_topic_id": "abc"},
        {"study_topic_id": 10**30},
    ],
)
def test_start_rejects_bad_input(api_client, topic, body):
    QuestionFactory(study_topic=topic)
    response = api_client.post(URL, {"study_topic_id": topic.id, **body}, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"
    assert list(response.json()["errors"]) == list(body)  # the field at fault, not "no eligible question"


def test_second_start_is_409_with_the_session_id(api_client, topic):
    QuestionFactory(study_topic=topic)
    first = start(api_client, topic).json()
    response = start(api_client, topic)
    assert response.status_code == 409
    assert response.json()["error_code"] == "quiz_in_progress" and response.json()["id"] == first["id"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_create_one_session(user, client_for):
    topic = StudyTopicFactory(user=user)
    QuestionFactory.create_batch(3, study_topic=topic)
    clients = [client_for(user) for _ in range(4)]

    def run(client) -> tuple:
        response = start(client, topic)
        return response.status_code, response.json()

    results = run_concurrently(*(lambda c=c: run(c) for c in clients))

    assert sorted(code for code, _ in results) == [201, 409, 409, 409]
    created = next(body for code, body in results if code == 201)
    assert all(body["id"] == created["id"] for code, body in results if code == 409)
    assert QuizSession.objects.filter(study_topic=topic, status="in_progress").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_start_that_lost_to_a_session_already_gone_again_goes_ahead(api_client, user, monkeypatch):
    """The race in order: a competing start commits after this start's check and before its INSERT (which then
    meets the partial unique index), and the competitor is abandoned before this start reads who won."""
    from study.services import quizzes as quiz_services

    topic = StudyTopicFactory(user=user)
    QuestionFactory.create_batch(2, study_topic=topic)
    real_in_progress_id = quiz_services._in_progress_id
    competitor = []

    def interleaved(**kwargs):
        if not competitor:  # this start's check: nothing yet; the competitor commits right after it
            found = real_in_progress_id(**kwargs)
            competitor.append(QuizSessionFactory(user=user, study_topic=topic, question_ids=[]))
            return found
        # gone before the re-read
        QuizSession.objects.filter(pk=competitor[0].pk).update(status="abandoned", finished_at=timezone.now())
        return real_in_progress_id(**kwargs)

    monkeypatch.setattr(quiz_services, "_in_progress_id", interleaved)
    response = start(api_client, topic)

    assert response.status_code == 201, response.content
    assert response.json()["id"] != competitor[0].pk
    in_progress = QuizSession.objects.filter(study_topic=topic, status="in_progress")
    assert list(in_progress.values_list("id", flat=True)) == [response.json()["id"]]


def test_current(api_client, other_client, topic):
    QuestionFactory(study_topic=topic)
    assert api_client.get(f"{URL}/current", {"study_topic_id": topic.id}).status_code == 404
    created = start(api_client, topic).json()
    response = api_client.get(f"{URL}/current/", {"study_topic_id": topic.id})
    assert response.status_code == 200 and response.json()["id"] == created["id"]
    assert other_client.get(f"{URL}/current", {"study_topic_id": topic.id}).status_code == 404
    assert api_client.get(f"{URL}/current").status_code == 400
    assert api_client.get(f"{URL}/current", {"study_topic_id": "x"}).status_code == 400


def test_answering_every_question_finalizes_with_summary(api_client, topic):
    q1 = QuestionFactory(study_topic=topic, correct_choice=1)
    q2 = QuestionFactory(study_topic=topic, correct_choice=2)
    q3 = QuestionFactory(study_topic=topic)
    session_id = start(api_client, topic).json()["id"]

    first = answer(api_client, session_id, q1.id, selected_choice=1)
    assert first.status_code == 201
    assert first.json() == {"outcome": "correct", "is_correct": True, "correct_choice": 1, "cursor": 1,
                            "status": "in_progress"}
    again = answer(api_client, session_id, q1.id, selected_choice=3).json()  # re-answer: cursor unchanged
    assert again["outcome"] == "wrong" and again["cursor"] == 1
    second = answer(api_client, session_id, q2.id, is_unsure=True).json()
    assert second["outcome"] == "unsure" and second["correct_choice"] == 2 and second["cursor"] == 2
    last = answer(api_client, session_id, q3.id, skipped=True).json()
    assert last["outcome"] == "skipped" and last["cursor"] == 3 and last["status"] == "done"
    assert last["summary"]["wrong"] == 1 and last["summary"]["unsure"] == 1 and last["summary"]["skipped"] == 1
    assert last["summary"]["correct"] == 0  # the last answer per question wins
    assert last["summary"]["pending_review_count"] == 2

    detail = api_client.get(f"{URL}/{session_id}").json()
    assert detail["status"] == "done" and detail["summary"] == last["summary"]
    assert detail["analysis"]["status"] == "pending"
    assert (detail["wrong_count"], detail["unsure_count"], detail["skipped_count"]) == (1, 1, 1)
    assert answer(api_client, session_id, q1.id, selected_choice=1).status_code == 409


def test_attempt_validation(api_client, topic):
    q = QuestionFactory(study_topic=topic, choices=["a", "b", "c"])
    outsider = QuestionFactory(study_topic=topic)
    QuizSession.objects.all().delete()
    session = QuizSessionFactory(study_topic=topic, question_ids=[q.id])

    def code(**body):
        response = answer(api_client, session.id, body.pop("question_id", q.id), **body)
        return response.status_code, response.json().get("error_code")

    assert code(question_id=outsider.id, selected_choice=1) == (400, "invalid")
    assert code() == (400, "invalid")  # nothing selected, not unsure, not skipped
    assert code(selected_choice=4) == (400, "invalid")  # beyond the 3 choices
    assert code(selected_choice=0) == (400, "invalid")
    assert code(selected_choice=10**30) == (400, "invalid")
    assert code(selected_choice="two") == (400, "invalid")
    assert code(question_id="🙂", selected_choice=1) == (400, "invalid")
    assert not QuestionAttempt.objects.exists()
    bad_json = api_client.post(f"{URL}/{session.id}/attempts", "{not json", content_type="application/json")
    assert bad_json.status_code == 400


def test_finish_finalizes_early_and_abandon_leaves_progress_alone(api_client, topic):
    q1, q2 = QuestionFactory.create_batch(2, study_topic=topic)
    session_id = start(api_client, topic).json()["id"]
    answer(api_client, session_id, q1.id, selected_choice=2)
    response = api_client.post(f"{URL}/{session_id}/finish")
    assert response.status_code == 200
    assert response.json()["summary"]["wrong"] == 1 and response.json()["summary"]["correct"] == 0
    assert QuestionProgress.objects.filter(question=q1).exists()
    assert not QuestionProgress.objects.filter(question=q2).exists()
    assert api_client.post(f"{URL}/{session_id}/finish").status_code == 409
    assert api_client.post(f"{URL}/{session_id}/abandon").status_code == 409

    second_id = start(api_client, topic).json()["id"]
    answer(api_client, second_id, q2.id, selected_choice=1)
    response = api_client.post(f"{URL}/{second_id}/abandon/")
    assert response.status_code == 200 and response.json()["status"] == "abandoned"
    assert response.json()["summary"] is None
    assert not QuestionProgress.objects.filter(question=q2).exists()
    assert not SessionAnalysis.objects.filter(quiz_session_id=second_id).exists()
    assert answer(api_client, second_id, q1.id, selected_choice=1).status_code == 409
    assert start(api_client, topic).status_code == 201  # the abandoned session no longer blocks


def test_a_quiz_of_a_deleted_topic_cannot_be_answered_or_finished_but_can_be_abandoned(api_client, topic):
    from study.services.topics import topic_delete

    question = QuestionFactory(study_topic=topic)
    session_id = start(api_client, topic).json()["id"]
    topic_delete(topic=topic)
    response = answer(api_client, session_id, question.id, selected_choice=1)
    assert response.status_code == 409 and "deleted" in response.json()["detail"]
    assert api_client.post(f"{URL}/{session_id}/finish").status_code == 409
    assert not QuestionProgress.objects.filter(question=question).exists()
    assert api_client.post(f"{URL}/{session_id}/abandon").json()["status"] == "abandoned"


def test_the_last_answer_finalizes_when_a_question_was_removed_since_the_start(api_client, topic):
    q1, q2, removed = QuestionFactory.create_batch(3, study_topic=topic)
    session_id = start(api_client, topic).json()["id"]
    removed.delete()  # gone from the database (the admin) while the quiz runs: the app no longer shows it
    shown = {q["id"] for q in api_client.get(f"{URL}/{session_id}").json()["questions"]}
    assert shown == {q1.id, q2.id}

    assert answer(api_client, session_id, q1.id, selected_choice=1).json()["status"] == "in_progress"
    last = answer(api_client, session_id, q2.id, selected_choice=2).json()

    assert last["cursor"] == 2 and last["status"] == "done"
    assert last["summary"]["correct"] == 1 and last["summary"]["wrong"] == 1
    assert QuizSession.objects.get(pk=session_id).finalized_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_last_answers_finalize_once(user, client_for):
    topic = StudyTopicFactory(user=user)
    q1, q2 = QuestionFactory.create_batch(2, study_topic=topic)
    session = QuizSessionFactory(study_topic=topic, question_ids=[q1.id, q2.id])
    progress = QuestionProgressFactory(question=q1, review_stage=0, due_at=timezone.now(), last_outcome="wrong")
    client = client_for(user)
    results = run_concurrently(
        *(lambda q=q: answer(client, session.id, q.id, selected_choice=1).json() for q in (q1, q2))
    )

    assert sorted(r["cursor"] for r in results) == [1, 2]
    assert sum("summary" in r for r in results) == 1
    session.refresh_from_db()
    assert session.status == "done" and session.correct_count == 2
    progress.refresh_from_db()
    assert progress.review_stage == 1  # advanced exactly once
    assert SessionAnalysis.objects.filter(quiz_session=session).count() == 1


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
def test_an_answer_that_waited_for_the_session_lock_is_timed_after_the_one_that_held_it(user, client_for):
    """The second answer arrives first but waits while the first holds the session; it completes the quiz, so its
    time (and the session's finish) must not come before the first's."""
    topic = StudyTopicFactory(user=user)
    q1, q2 = QuestionFactory.create_batch(2, study_topic=topic)
    session = QuizSessionFactory(study_topic=topic, question_ids=[q1.id, q2.id])
    locked = threading.Event()

    def first() -> None:
        with transaction.atomic():
            QuizSession.objects.select_for_update().get(pk=session.pk)
            locked.set()
            assert hold_until_another_waits()
            quiz_attempt_record(user=user, quiz_session_id=session.id, question_id=q1.id, selected_choice=1)

    def second() -> dict:
        locked.wait(10)
        return answer(client_for(user), session.id, q2.id, selected_choice=1).json()

    completing = run_concurrently(first, second)[1]

    assert completing["status"] == "done", completing
    times = dict(QuestionAttempt.objects.filter(quiz_session=session).values_list("question_id", "answered_at"))
    assert times[q2.id] >= times[q1.id]
    session.refresh_from_db()
    assert session.finished_at >= times[q1.id]


def test_analysis_is_shown_when_present(api_client, topic):
    session = QuizSessionFactory(study_topic=topic, status="done", summary={"correct": 0})
    SessionAnalysis.objects.create(
        user=topic.user,
        quiz_session=session,
        status="done",
        weakest_subjects=[{"subject": "연소공학", "accuracy": 0.25}],
        subjects=[{"subject": "연소공학", "correct": 1, "wrong": 3, "unsure": 0, "accuracy": 0.25,
                   "topic_accuracy": 0.5}],
        chronic_question_ids=[7],
        regressed_question_ids=[],
    )
    analysis = api_client.get(f"{URL}/{session.id}").json()["analysis"]
    assert analysis["status"] == "done" and analysis["chronic_question_ids"] == [7]
    assert analysis["weakest_subjects"] == [{"subject": "연소공학", "accuracy": 0.25}]


def test_list_filters_and_constant_queries(api_client, topic, user, django_assert_max_num_queries):
    other_topic = StudyTopicFactory(user=user)
    QuizSessionFactory.create_batch(3, study_topic=topic, status="done")
    QuizSessionFactory(study_topic=other_topic, status="abandoned")
    QuizSessionFactory()  # another user's
    with django_assert_max_num_queries(4):
        body = api_client.get(URL).json()
    assert body["count"] == 4
    assert api_client.get(URL, {"study_topic_id": topic.id}).json()["count"] == 3
    assert api_client.get(URL, {"status": "abandoned"}).json()["count"] == 1
    assert api_client.get(URL, {"status": "weird"}).status_code == 400
    assert api_client.get(URL, {"study_topic_id": "x"}).status_code == 400
    assert api_client.get(URL, {"study_topic_id": 10**30}).status_code == 400


def test_isolation_and_bad_ids(api_client, other_client, topic):
    q = QuestionFactory(study_topic=topic)
    session_id = start(api_client, topic).json()["id"]
    assert other_client.get(f"{URL}/{session_id}").status_code == 404
    assert answer(other_client, session_id, q.id, selected_choice=1).status_code == 404
    assert other_client.post(f"{URL}/{session_id}/finish").status_code == 404
    assert other_client.post(f"{URL}/{session_id}/abandon").status_code == 404
    assert start(other_client, topic).status_code == 404
    for bad in ("abc", "99999999999999999999999", "0"):
        assert api_client.get(f"{URL}/{bad}").status_code == 404
        assert api_client.post(f"{URL}/{bad}/finish").status_code == 404
    assert QuizSession.objects.get(pk=session_id).status == "in_progress"


def test_anonymous_is_401(anon_client):
    assert anon_client.get(URL).status_code == 401
    assert anon_client.post(URL, {}, format="json").status_code == 401


def _session_with_rows(topic, questions, **fields):
    """A quiz session over `questions`, each answered once, with an analysis."""
    session = QuizSessionFactory(study_topic=topic, question_ids=[q.id for q in questions], **fields)
    for question in questions:
        QuestionAttemptFactory(quiz_session=session, question=question, outcome="wrong", selected_choice=2)
    SessionAnalysis.objects.create(user=topic.user, quiz_session=session, status="done")
    return session


@pytest.mark.parametrize("sessions", [2, 25])
def test_list_query_count_does_not_grow_with_sessions(api_client, topic, user, sessions, django_assert_max_num_queries):
    other_topic = StudyTopicFactory(user=user)
    questions = QuestionFactory.create_batch(3, study_topic=topic)
    for i in range(sessions):
        _session_with_rows(other_topic if i % 3 == 0 else topic, questions, status="done")
    # token auth (1) + count (1) + page with cursor and analysis (1)
    with django_assert_max_num_queries(3):
        body = api_client.get(URL, {"limit": 200}).json()
    assert body["count"] == sessions
    assert all(s["cursor"] == 3 and s["analysis"]["status"] == "done" for s in body["results"])


@pytest.mark.parametrize("size", [2, 30])
def test_detail_and_current_query_count_does_not_grow_with_questions(
    api_client, topic, size, django_assert_max_num_queries
):
    questions = QuestionFactory.create_batch(size, study_topic=topic)
    for question in questions:
        QuestionProgressFactory(question=question, last_outcome="wrong")
    session = _session_with_rows(topic, questions)
    # token auth (1) + the session with cursor and analysis (1) + its questions (1)
    with django_assert_max_num_queries(3):
        body = api_client.get(f"{URL}/{session.id}").json()
    assert len(body["questions"]) == size and body["cursor"] == size
    with django_assert_max_num_queries(3):
        body = api_client.get(f"{URL}/current", {"study_topic_id": topic.id}).json()
    assert body["id"] == session.id and len(body["questions"]) == size


def test_a_skip_sent_with_a_choice_stores_no_choice(api_client, topic):
    q1, _q2 = QuestionFactory.create_batch(2, study_topic=topic)  # the second keeps the session open
    session_id = start(api_client, topic).json()["id"]

    response = answer(api_client, session_id, q1.id, selected_choice=2, skipped=True)

    assert response.status_code in (200, 201), response.content
    assert response.json()["outcome"] == "skipped"
    assert QuestionAttempt.objects.filter(question=q1).values_list("outcome", "selected_choice").get() == (
        "skipped", None)


def test_current_is_404_once_the_topic_is_deleted(api_client, topic):
    from study.services.topics import topic_delete

    QuestionFactory(study_topic=topic)
    assert start(api_client, topic).status_code == 201
    topic_delete(topic=topic)
    response = api_client.get(f"{URL}/current", {"study_topic_id": topic.id})
    assert response.status_code == 404 and response.json()["error_code"] == "not_found"


def test_a_question_deleted_during_the_quiz_stays_in_it_until_answered(api_client, topic):
    """The session is a snapshot: a question soft-deleted meanwhile is still shown and still completes it."""
    from study.services.questions import question_delete

    kept, deleted = QuestionFactory.create_batch(2, study_topic=topic, correct_choice=1)
    session_id = start(api_client, topic).json()["id"]
    question_delete(question=deleted)
    shown = [q["id"] for q in api_client.get(f"{URL}/{session_id}").json()["questions"]]
    assert sorted(shown) == sorted([kept.id, deleted.id])
    assert answer(api_client, session_id, kept.id, selected_choice=1).json()["status"] == "in_progress"
    last = answer(api_client, session_id, deleted.id, selected_choice=1).json()
    assert last["status"] == "done" and last["summary"]["correct"] == 2


def test_the_list_is_newest_first(api_client, topic):
    QuestionFactory(study_topic=topic)
    first = start(api_client, topic).json()["id"]
    api_client.post(f"{URL}/{first}/abandon")
    second = start(api_client, topic).json()["id"]
    assert [s["id"] for s in api_client.get(URL).json()["results"]] == [second, first]
