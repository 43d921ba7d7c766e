"""Session analysis: skipped below 5 misses, else per-subject accuracy vs topic history and weak spots."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from study.models import QuestionProgress, SessionAnalysis
from study.services.analysis import quiz_session_analyze
from study.tasks import analyze_quiz_session
from study.tests.factories import (
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    StudyTopicFactory,
)
from studyserver.testing import run_concurrently

A, B, C, D = "가스일반", "안전관리", "법규", "연소"


def answer(session, question, outcome, minutes):
    return QuestionAttemptFactory(
        quiz_session=session, question=question, outcome=outcome,
        selected_choice=None if outcome in ("unsure", "skipped") else 1,
        answered_at=timezone.now() - timedelta(minutes=100 - minutes),
    )


@pytest.fixture
def scenario(user, other_user):
    topic = StudyTopicFactory(user=user)
    q = {i: QuestionFactory(study_topic=topic, subject=s) for i, s in
         enumerate([A, A, B, B, B, C, C, D, A], start=1)}
    earlier = QuizSessionFactory(study_topic=topic, status="done")
    answer(earlier, q[1], "correct", 1)
    answer(earlier, q[2], "correct", 2)
    answer(earlier, q[3], "correct", 3)
    answer(earlier, q[4], "wrong", 4)
    # offered but never answered (the session was finished early): chronic and regressed by earlier sessions
    q[10], q[11] = QuestionFactory(study_topic=topic, subject=A), QuestionFactory(study_topic=topic, subject=B)
    session = QuizSessionFactory(study_topic=topic, status="done", question_ids=[q[i].id for i in range(1, 12)])
    for i, outcome in [(1, "correct"), (2, "correct"), (2, "wrong"), (3, "wrong"), (4, "unsure"), (5, "wrong"),
                       (6, "wrong"), (7, "correct"), (8, "correct"), (9, "skipped")]:
        answer(session, q[i], outcome, 10 + i)
    # neither an unfinished session nor another learner counts in the topic history
    answer(QuizSessionFactory(study_topic=topic, status="abandoned"), q[1], "wrong", 30)
    foreign = QuestionFactory(study_topic__user=other_user, subject=A)
    answer(QuizSessionFactory(study_topic=foreign.study_topic, status="done"), foreign, "wrong", 31)
    QuestionProgressFactory(question=q[3], pattern_state="chronic_wrong")
    QuestionProgressFactory(question=q[5], pattern_state="chronic_wrong")
    QuestionProgressFactory(question=q[6], pattern_state="regressed")
    QuestionProgressFactory(question=q[2], pattern_state="regressed")
    QuestionProgressFactory(question=q[4], pattern_state="wrong")
    QuestionProgressFactory(question=QuestionFactory(study_topic=topic), pattern_state="chronic_wrong")
    QuestionProgressFactory(question=q[10], pattern_state="chronic_wrong")
    QuestionProgressFactory(question=q[11], pattern_state="regressed")
    return session, q


@pytest.mark.django_db
def test_analysis_of_a_session_with_enough_misses(scenario, django_assert_max_num_queries):
    session, q = scenario
    # The chronic and regressed questions finalize recorded (the ones it answered, not q[10], only offered), kept
    # as recorded: q[3] has recovered since, in a later session.
    SessionAnalysis.objects.create(user=session.user, quiz_session=session,
                                   chronic_question_ids=sorted([q[3].id, q[5].id]),
                                   regressed_question_ids=sorted([q[2].id, q[6].id]))
    QuestionProgress.objects.filter(question=q[3]).update(pattern_state="recovered")
    with django_assert_max_num_queries(10):
        assert quiz_session_analyze(quiz_session_id=session.id) == "done"
    analysis = SessionAnalysis.objects.get(quiz_session=session)
    assert (analysis.status, analysis.reason) == ("done", "")
    assert analysis.subjects == [
        # A's history: q1 and q2 correct before; here q1 correct, q2 correct then wrong (its last answer counts)
        {"subject": A, "correct": 1, "wrong": 1, "unsure": 0, "accuracy": 0.5, "topic_accuracy": 0.75},
        {"subject": C, "correct": 1, "wrong": 1, "unsure": 0, "accuracy": 0.5, "topic_accuracy": 0.5},
        {"subject": B, "correct": 0, "wrong": 2, "unsure": 1, "accuracy": 0.0, "topic_accuracy": 0.2},
        {"subject": D, "correct": 1, "wrong": 0, "unsure": 0, "accuracy": 1.0, "topic_accuracy": 1.0},
    ]
    assert analysis.weakest_subjects == [
        {"subject": B, "accuracy": 0.0}, {"subject": A, "accuracy": 0.5}, {"subject": C, "accuracy": 0.5},
    ]
    assert analysis.chronic_question_ids == sorted([q[3].id, q[5].id])
    assert analysis.regressed_question_ids == sorted([q[2].id, q[6].id])


@pytest.mark.django_db
def test_fewer_than_five_misses_is_skipped(user):
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user), status="done")
    for i, outcome in enumerate(["wrong", "wrong", "unsure", "unsure", "correct", "skipped"]):
        answer(session, QuestionFactory(study_topic=session.study_topic), outcome, i)
    assert analyze_quiz_session.apply(args=[session.id]).get() == "skipped"
    analysis = SessionAnalysis.objects.get(quiz_session=session)  # created when finalize did not
    assert (analysis.status, analysis.reason, analysis.subjects) == ("skipped", "insufficient_attempts", [])


@pytest.mark.django_db
def test_a_repeated_miss_in_one_session_counts_once(user):
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user), status="done")
    question = QuestionFactory(study_topic=session.study_topic)
    for i in range(6):
        answer(session, question, "wrong", i)
    assert quiz_session_analyze(quiz_session_id=session.id) == "skipped"


@pytest.mark.django_db(transaction=True)
def test_a_session_deleted_with_its_user_while_it_is_analysed_is_missing(user, monkeypatch):
    """The user's delete commits between the session's read and the analysis's insert: the insert's foreign key
    failed, and the task logged an unexpected IntegrityError where there is simply nothing left to analyse."""
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user), status="done")
    get_or_create = SessionAnalysis.objects.get_or_create

    def after_the_delete(**kwargs):
        type(user).objects.filter(pk=user.pk).delete()
        return get_or_create(**kwargs)

    monkeypatch.setattr(SessionAnalysis.objects, "get_or_create", after_the_delete)
    assert quiz_session_analyze(quiz_session_id=session.id) == "missing"
    assert not SessionAnalysis.objects.exists()


@pytest.mark.django_db
def test_idempotent_and_only_for_finished_sessions(scenario):
    session, _ = scenario
    assert quiz_session_analyze(quiz_session_id=session.id) == "done"
    SessionAnalysis.objects.filter(quiz_session=session).update(subjects=["kept"])
    assert quiz_session_analyze(quiz_session_id=session.id) == "already"
    assert SessionAnalysis.objects.get(quiz_session=session).subjects == ["kept"]
    running = QuizSessionFactory(study_topic=StudyTopicFactory(user=session.user))
    assert quiz_session_analyze(quiz_session_id=running.id) == "not_ready"
    assert not SessionAnalysis.objects.filter(quiz_session=running).exists()
    assert quiz_session_analyze(quiz_session_id=10**12) == "missing"


@pytest.mark.django_db
def test_admin_shows_the_analysis_readably(scenario, admin_client):
    session, _ = scenario
    quiz_session_analyze(quiz_session_id=session.id)
    analysis = SessionAnalysis.objects.get(quiz_session=session)
    changelist = admin_client.get(reverse("admin:study_sessionanalysis_changelist"))
    assert changelist.status_code == 200
    assert f"{B} (0.0)" in changelist.content.decode()
    page = admin_client.get(reverse("admin:study_sessionanalysis_change", args=[analysis.id]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<th>topic_accuracy</th>" in html
    assert f"<td>{B}</td><td>0</td><td>2</td><td>1</td><td>0.0</td><td>0.2</td>" in html
    assert "&quot;subject&quot;: &quot;안전관리&quot;" in html  # pretty JSON, not \\uXXXX escapes


@pytest.mark.django_db(transaction=True)
def test_two_workers_analyse_once(user):
    session = QuizSessionFactory(study_topic=StudyTopicFactory(user=user), status="done")
    for i in range(5):
        answer(session, QuestionFactory(study_topic=session.study_topic), "wrong", i)
    results = run_concurrently(*(lambda: quiz_session_analyze(quiz_session_id=session.id) for _ in range(2)))
    assert sorted(results) == ["already", "done"]
    assert SessionAnalysis.objects.get(quiz_session=session).weakest_subjects == [{"subject": "가스안전관리",
                                                                                 "accuracy": 0.0}]


@pytest.mark.django_db
def test_the_sweep_analyses_what_a_lost_kick_left_pending(scenario):
    """Finalize writes a pending analysis and enqueues its task after commit; with the broker down the task is
    lost. Beat's sweep analyses such sessions once they are older than a few minutes, not fresh ones."""
    from study.tasks import analyses_sweep

    session, _ = scenario
    lost = SessionAnalysis.objects.create(user=session.user, quiz_session=session, status="pending")
    SessionAnalysis.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=30))
    fresh_session = QuizSessionFactory(study_topic=session.study_topic, status="done")
    fresh = SessionAnalysis.objects.create(user=session.user, quiz_session=fresh_session, status="pending")

    assert analyses_sweep.apply().get() == 1
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == "done" and fresh.status == "pending"
    assert analyses_sweep.apply().get() == 0  # nothing left behind


@pytest.mark.django_db
def test_an_answer_stored_twice_counts_once_in_the_topic_history(user):
    """An offline session written back under two uuids (two devices, a reinstall) stores each answer twice: the
    same question at the same instant. Finalize counts it once in the pattern window; the topic accuracy counted
    both copies. A copy superseded in its own session hides nothing."""
    topic = StudyTopicFactory(user=user)
    q1, q2 = (QuestionFactory(study_topic=topic, subject=A) for _ in range(2))
    first, second = (QuizSessionFactory(study_topic=topic, status="done") for _ in range(2))
    at = timezone.now() - timedelta(hours=1)
    for session in (first, second):
        for question, outcome, minute in ((q1, "correct", 1), (q2, "wrong", 2)):
            QuestionAttemptFactory(quiz_session=session, question=question, outcome=outcome, selected_choice=1,
                                   answered_at=at + timedelta(minutes=minute))
    answer(second, q2, "correct", 90)  # the second copy of q2's miss is superseded in its own session
    live = QuizSessionFactory(study_topic=topic, status="done")
    for i in range(5):
        answer(live, QuestionFactory(study_topic=topic, subject=A), "wrong", 10 + i)

    assert quiz_session_analyze(quiz_session_id=live.id) == "done"

    # q1 correct once, q2 wrong (first) and correct (second), five misses now: 2 of 8
    [row] = SessionAnalysis.objects.get(quiz_session=live).subjects
    assert row["topic_accuracy"] == 0.25


@pytest.mark.django_db
def test_a_subject_answered_all_right_is_no_weak_subject(user):
    topic = StudyTopicFactory(user=user)
    session = QuizSessionFactory(study_topic=topic, status="done")
    for i in range(5):
        answer(session, QuestionFactory(study_topic=topic, subject=C), "wrong", i)
        answer(session, QuestionFactory(study_topic=topic, subject=D), "correct", 10 + i)
    answer(session, QuestionFactory(study_topic=topic, subject=A), "unsure", 20)

    assert quiz_session_analyze(quiz_session_id=session.id) == "done"

    analysis = SessionAnalysis.objects.get(quiz_session=session)
    assert [s["subject"] for s in analysis.subjects] == sorted([A, C, D])  # every subject is still reported
    assert analysis.weakest_subjects == [{"subject": C, "accuracy": 0.0}, {"subject": A, "accuracy": 0.0}]


def _quiz(client, topic, choice: int) -> dict:
    """Start a quiz on the topic and answer every question with `choice`; the finishing response."""
    started = client.post("/api/quiz-sessions", {"study_topic_id": topic.id}, format="json")
    assert started.status_code == 201, started.content
    session = started.json()
    for question_id in session["question_ids"]:
        last = client.post(f"/api/quiz-sessions/{session['id']}/attempts",
                           {"question_id": question_id, "selected_choice": choice}, format="json")
        assert last.status_code == 201, last.content
    assert last.json()["status"] == "done"
    return {"id": session["id"], **last.json()}


@pytest.fixture
def analysed_late(api_client, user):
    """S0 all wrong, S1 all wrong (chronic: its summary says 5 remain), S2 all right (recovered); S1's analysis
    runs only then (a busy worker, a retry, the sweep; or the viewer writing back several sessions at once)."""
    topic = StudyTopicFactory(user=user)
    questions = [QuestionFactory(study_topic=topic, subject=A, correct_choice=1) for _ in range(5)]
    _quiz(api_client, topic, choice=2)
    s1 = _quiz(api_client, topic, choice=2)
    assert s1["summary"]["chronic_remaining"] == 5
    assert SessionAnalysis.objects.get(quiz_session_id=s1["id"]).status == "pending"
    _quiz(api_client, topic, choice=1)
    assert quiz_session_analyze(quiz_session_id=s1["id"]) == "done"
    return s1, questions


@pytest.mark.django_db
def test_a_late_analysis_reports_the_chronic_questions_its_session_left(api_client, analysed_late):
    """The patterns were read when the task ran: a later session's answers had recovered them, and the analysis
    listed none while the session's own summary said 5 remained."""
    s1, questions = analysed_late
    body = api_client.get(f"/api/quiz-sessions/{s1['id']}").json()["analysis"]
    assert body["chronic_question_ids"] == sorted(q.id for q in questions)


@pytest.mark.django_db
def test_a_late_analysis_compares_with_the_history_up_to_its_session(analysed_late):
    """topic_accuracy counted the sessions finished after this one too (S2's right answers: 0.333)."""
    s1, _ = analysed_late
    [subject] = SessionAnalysis.objects.get(quiz_session_id=s1["id"]).subjects
    assert (subject["accuracy"], subject["topic_accuracy"]) == (0.0, 0.0)  # S0 + S1: 0 of 10
