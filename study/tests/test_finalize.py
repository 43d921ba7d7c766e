"""quiz_session_finalize: progress, pattern, SR, summary counters, idempotency, query count, follow-up work."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from study.models import QuestionExplanation, QuestionProgress, SessionAnalysis
from study.services.finalize import quiz_session_finalize
from study.tasks import analyze_quiz_session, explain_question
from study.tests.factories import (
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    StudyTopicFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def topic(user):
    return StudyTopicFactory(user=user)


def make_session(topic, answers, *, status="in_progress", at=None, finalize=False):
    """A session over the questions in `answers` ({question: outcome or [outcomes]}), attempts in order."""
    at = at or timezone.now()
    # A done session is left unfinalized, as ingest creates it: the test finalizes it.
    session = QuizSessionFactory(study_topic=topic, status=status, question_ids=[q.id for q in answers],
                                 finalized_at=None, summary=None)
    tick = 0
    for question, outcomes in answers.items():
        for outcome in outcomes if isinstance(outcomes, list) else [outcomes]:
            tick += 1
            QuestionAttemptFactory(
                quiz_session=session,
                question=question,
                outcome=outcome,
                selected_choice=None if outcome in ("unsure", "skipped") else (1 if outcome == "correct" else 2),
                answered_at=at + timedelta(seconds=tick),
            )
    if finalize:
        quiz_session_finalize(quiz_session=session, now=at + timedelta(minutes=5))
    return session


def progress_of(question):
    return QuestionProgress.objects.get(question=question)


def test_finalize_upserts_progress_counts_and_marks_done(topic):
    q1, q2, q3, q4 = QuestionFactory.create_batch(4, study_topic=topic)
    now = timezone.now()
    session = make_session(topic, {q1: "correct", q2: "wrong", q3: "unsure", q4: "skipped"}, at=now)

    summary = quiz_session_finalize(quiz_session=session, now=now + timedelta(minutes=1))

    assert summary == {
        "correct": 1,
        "wrong": 1,
        "unsure": 1,
        "skipped": 1,
        "newly_correct": 1,
        "relapsed": 0,
        "recovered": 0,
        "chronic_remaining": 0,
        "pending_review_count": 2,
        "chronic_count": 0,
        "regressed_count": 0,
    }
    session.refresh_from_db()
    assert session.status == "done"
    assert session.finalized_at == now + timedelta(minutes=1)
    assert session.finished_at == now + timedelta(minutes=1)
    assert (session.correct_count, session.wrong_count, session.unsure_count, session.skipped_count) == (1, 1, 1, 1)
    assert session.summary == summary

    p2 = progress_of(q2)
    assert p2.last_outcome == "wrong"
    assert p2.last_attempt.quiz_session_id == session.id
    assert p2.pattern_state == "wrong" and p2.pattern_window_attempts == ["wrong"]
    assert p2.due_at is None and p2.review_stage == 0  # not in the review queue: SR untouched
    assert progress_of(q1).pattern_state == "stable"
    p4 = progress_of(q4)
    assert p4.last_outcome == "skipped" and p4.pattern_state is None


def test_last_attempt_per_question_wins(topic):
    q = QuestionFactory(study_topic=topic)
    session = make_session(topic, {q: ["wrong", "correct"]})
    summary = quiz_session_finalize(quiz_session=session)
    assert summary["correct"] == 1 and summary["wrong"] == 0
    progress = progress_of(q)
    assert progress.last_outcome == "correct"
    assert progress.pattern_window_attempts == ["correct"]  # the superseded answer is not in the window


def test_answers_replaced_in_earlier_sessions_stay_out_of_later_windows(topic):
    q = QuestionFactory(study_topic=topic)
    start = timezone.now() - timedelta(days=5)
    make_session(topic, {q: ["wrong", "correct"]}, at=start, finalize=True)  # the learner changed the answer
    summary = quiz_session_finalize(quiz_session=make_session(topic, {q: "correct"}, at=start + timedelta(days=1)))
    progress = progress_of(q)
    assert progress.pattern_window_attempts == ["correct", "correct"]
    assert progress.pattern_state == "stable" and summary["recovered"] == 0


def test_an_offline_answer_older_than_progress_is_history_only(topic):
    """Ingest may bring an answer given before the learner's latest one: it takes its place in the pattern
    window, but the newer outcome, the SR state and the relapse counter stay as the newer answer left them."""
    q = QuestionFactory(study_topic=topic)
    now = timezone.now()
    make_session(topic, {q: "correct"}, at=now - timedelta(days=3), finalize=True)
    QuestionProgress.objects.filter(question=q).update(  # reviewed, then recalled on the ladder
        review_stage=1, due_at=now + timedelta(days=2), last_reviewed_at=now - timedelta(days=3))
    summary = quiz_session_finalize(
        quiz_session=make_session(topic, {q: "wrong"}, at=now - timedelta(days=4)), now=now
    )
    progress = progress_of(q)
    assert progress.last_outcome == "correct" and progress.last_attempted_at > now - timedelta(days=4)
    assert (progress.review_stage, progress.due_at) == (1, now + timedelta(days=2))
    assert progress.pattern_window_attempts == ["wrong", "correct"] and progress.pattern_state == "recovered"
    assert summary["wrong"] == 1 and summary["relapsed"] == 0

    # a newer wrong answer still relapses and resets the ladder
    summary = quiz_session_finalize(quiz_session=make_session(topic, {q: "wrong"}, at=now), now=now)
    assert summary["relapsed"] == 1
    assert (progress_of(q).review_stage, progress_of(q).due_at) == (0, now + timedelta(days=1))


def test_pattern_uses_finalized_history_and_ignores_abandoned_sessions(topic):
    q = QuestionFactory(study_topic=topic)
    start = timezone.now() - timedelta(days=10)
    make_session(topic, {q: "correct"}, at=start, finalize=True)
    make_session(topic, {q: "wrong"}, at=start + timedelta(days=1), status="abandoned")  # never counted
    make_session(topic, {q: "wrong"}, at=start + timedelta(days=2), finalize=True)
    assert progress_of(q).pattern_state == "regressed"

    summary = quiz_session_finalize(quiz_session=make_session(topic, {q: "unsure"}, at=start + timedelta(days=3)))
    progress = progress_of(q)
    assert progress.pattern_window_attempts == ["correct", "wrong", "unsure"]
    assert progress.pattern_state == "chronic_wrong"
    assert summary["chronic_remaining"] == 1 and summary["chronic_count"] == 1 and summary["regressed_count"] == 0

    summary = quiz_session_finalize(quiz_session=make_session(topic, {q: "correct"}, at=start + timedelta(days=4)))
    assert progress_of(q).pattern_window_attempts == ["wrong", "unsure", "correct"]
    assert progress_of(q).pattern_state == "recovered"
    assert summary["recovered"] == 1 and summary["chronic_count"] == 0


def test_relapsed_and_newly_correct(topic):
    q_relapse, q_again, q_unsure = QuestionFactory.create_batch(3, study_topic=topic)
    start = timezone.now() - timedelta(days=3)
    make_session(topic, {q_relapse: "correct", q_again: "correct", q_unsure: "correct"}, at=start, finalize=True)
    summary = quiz_session_finalize(quiz_session=make_session(
        topic, {q_relapse: "wrong", q_again: "correct", q_unsure: "unsure"}, at=start + timedelta(days=1)
    ))
    assert summary["relapsed"] == 1  # SPEC: prior last outcome correct, now wrong (unsure is no relapse)
    assert summary["newly_correct"] == 0  # each had a prior attempt
    assert summary["regressed_count"] == 2  # correct, then wrong or unsure


def test_sr_advances_only_questions_already_in_the_queue(topic):
    queued, not_queued = QuestionFactory.create_batch(2, study_topic=topic)
    now = timezone.now()
    QuestionProgressFactory(question=queued, review_stage=1, due_at=now - timedelta(hours=1), last_outcome="wrong")
    session = make_session(topic, {queued: "correct", not_queued: "correct"}, at=now)
    quiz_session_finalize(quiz_session=session, now=now)
    assert (progress_of(queued).review_stage, progress_of(queued).due_at) == (2, now + timedelta(days=7))
    assert (progress_of(not_queued).review_stage, progress_of(not_queued).due_at) == (0, None)


def test_skip_keeps_sr_state(topic):
    q = QuestionFactory(study_topic=topic)
    due = timezone.now() + timedelta(days=2)
    QuestionProgressFactory(question=q, review_stage=2, due_at=due, last_outcome="correct", pattern_state="stable")
    quiz_session_finalize(quiz_session=make_session(topic, {q: "skipped"}))
    progress = progress_of(q)
    assert (progress.review_stage, progress.due_at, progress.pattern_state) == (2, due, "stable")


def test_finalize_is_idempotent_and_never_advances_twice(topic):
    q = QuestionFactory(study_topic=topic)
    now = timezone.now()
    QuestionProgressFactory(question=q, review_stage=0, due_at=now - timedelta(hours=1), last_outcome="wrong")
    session = make_session(topic, {q: "correct"}, at=now)
    first = quiz_session_finalize(quiz_session=session, now=now)
    state = progress_of(q)
    second = quiz_session_finalize(quiz_session=session, now=now + timedelta(days=5))
    assert second == first
    again = progress_of(q)
    assert (again.review_stage, again.due_at, again.updated_at) == (1, now + timedelta(days=3), state.updated_at)
    session.refresh_from_db()
    assert session.finalized_at == now
    assert SessionAnalysis.objects.filter(quiz_session=session).count() == 1


def test_finalize_inside_a_callers_transaction(topic):
    """The ingest path: a done session and its attempts created in bulk, then finalize, one transaction."""
    q = QuestionFactory(study_topic=topic)
    with transaction.atomic():
        session = make_session(topic, {q: "wrong"}, status="done")
        summary = quiz_session_finalize(quiz_session=session)
        assert session.finalized_at is not None  # the caller's object is updated too
    assert summary["wrong"] == 1
    assert progress_of(q).last_outcome == "wrong"


@pytest.mark.postgresql
@pytest.mark.parametrize("size", [10, 100])
def test_finalize_query_count_is_fixed(topic, size, django_assert_num_queries):
    questions = QuestionFactory.create_batch(size, study_topic=topic)
    now = timezone.now()
    # Half already have progress in the SR queue, half are new; every outcome kind appears.
    for question in questions[::2]:
        QuestionProgressFactory(question=question, review_stage=1, due_at=now, last_outcome="wrong")
    outcomes = ["correct", "wrong", "unsure", "skipped"]
    session = make_session(topic, {q: outcomes[i % 4] for i, q in enumerate(questions)}, at=now)
    # savepoint, lock session, attempts, create missing progress, lock progress, pattern windows, upsert
    # progress, topic counts, save session, analysis row, explanation candidates, release
    with django_assert_num_queries(12):
        summary = quiz_session_finalize(quiz_session=session, now=now)
    assert summary["correct"] + summary["wrong"] + summary["unsure"] + summary["skipped"] == size
    assert QuestionProgress.objects.filter(question__in=questions).count() == size


def test_follow_up_work_is_enqueued_after_commit(topic, django_capture_on_commit_callbacks):
    wrong, unsure, explained, deleted, right = QuestionFactory.create_batch(5, study_topic=topic)
    QuestionExplanation.objects.create(user=topic.user, question=explained, text="already explained")
    session = make_session(
        topic, {wrong: "wrong", unsure: "unsure", explained: "wrong", deleted: "wrong", right: "correct"}
    )
    deleted.deleted_at = timezone.now()
    deleted.save(update_fields=["deleted_at"])

    with (
        mock.patch.object(explain_question, "apply_async") as explain,
        mock.patch.object(analyze_quiz_session, "apply_async") as analyze,
    ):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            quiz_session_finalize(quiz_session=session)
        assert explain.call_count == 0 and analyze.call_count == 0  # nothing before commit
        for callback in callbacks:
            callback()

    assert sorted(call.kwargs["args"][0] for call in explain.call_args_list) == sorted([wrong.id, unsure.id])
    analyze.assert_called_once_with(args=(session.id,), kwargs={})
    analysis = SessionAnalysis.objects.get(quiz_session=session)
    assert analysis.status == "pending" and analysis.user_id == topic.user_id


def test_enqueue_failure_never_breaks_finalize(topic, django_capture_on_commit_callbacks):
    q = QuestionFactory(study_topic=topic)
    session = make_session(topic, {q: "wrong"})
    broken = mock.patch.object(explain_question, "apply_async", side_effect=ConnectionError("broker down"))
    broken_too = mock.patch.object(analyze_quiz_session, "apply_async", side_effect=ConnectionError("broker down"))
    with broken, broken_too, django_capture_on_commit_callbacks(execute=True) as callbacks:
        summary = quiz_session_finalize(quiz_session=session)
    assert len(callbacks) == 2
    assert summary["wrong"] == 1
    session.refresh_from_db()
    assert session.status == "done" and session.finalized_at is not None
    assert SessionAnalysis.objects.filter(quiz_session=session, status="pending").exists()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_finalizes_of_a_new_question_at_once_see_each_other():
    """An ingest of an older offline answer finalizes while a newer answer's finalize has not committed: it
    waits for it (the progress row exists before it is locked) and treats its own answer as history, instead
    of inserting as if first and overwriting the newer outcome."""
    import threading

    from studyserver.testing import hold_until_another_waits, run_concurrently

    topic = StudyTopicFactory()
    q = QuestionFactory(study_topic=topic, user=topic.user)
    now = timezone.now()
    # done, not yet finalized, as ingest creates them (one topic allows one in-progress quiz)
    newer = make_session(topic, {q: "correct"}, at=now - timedelta(hours=1), status="done")
    older = make_session(topic, {q: "wrong"}, at=now - timedelta(hours=2), status="done")
    newer_locked = threading.Event()

    def finalize_newer_and_hold() -> None:
        with transaction.atomic():
            quiz_session_finalize(quiz_session=newer, now=now)
            newer_locked.set()
            assert hold_until_another_waits()  # the other finalize must wait for this commit

    def finalize_older() -> dict:
        newer_locked.wait(10)
        return quiz_session_finalize(quiz_session=older, now=now)

    _, summary = run_concurrently(finalize_newer_and_hold, finalize_older)
    progress = progress_of(q)
    assert progress.last_outcome == "correct" and progress.last_attempt.quiz_session_id == newer.id
    assert progress.pattern_window_attempts == ["wrong", "correct"]
    assert summary["newly_correct"] == 0 and summary["wrong"] == 1


def test_a_regressed_question_is_not_chronic_remaining(topic):
    q = QuestionFactory(study_topic=topic)
    start = timezone.now() - timedelta(days=2)
    make_session(topic, {q: "correct"}, at=start, finalize=True)

    summary = quiz_session_finalize(quiz_session=make_session(topic, {q: "wrong"}, at=start + timedelta(days=1)))

    assert progress_of(q).pattern_state == "regressed"
    assert (summary["regressed_count"], summary["chronic_remaining"]) == (1, 0)


def test_the_sessions_counts_keep_wrong_and_unsure_apart(topic):
    """Every other test had as many wrong as unsure answers: swapped columns went unseen (ingest's repeat answers
    them)."""
    q1, q2, q3 = QuestionFactory.create_batch(3, study_topic=topic)
    session = make_session(topic, {q1: "wrong", q2: "wrong", q3: "unsure"})

    quiz_session_finalize(quiz_session=session)

    session.refresh_from_db()
    assert (session.wrong_count, session.unsure_count) == (2, 1)


def test_a_skip_leaves_the_pattern_and_its_time(topic):
    """The chronic and regressed tabs sort by pattern_updated_at: a skip must not move a question up."""
    q = QuestionFactory(study_topic=topic)
    start = timezone.now() - timedelta(days=2)
    make_session(topic, {q: "wrong"}, at=start, finalize=True)
    before = progress_of(q)

    quiz_session_finalize(quiz_session=make_session(topic, {q: "skipped"}, at=start + timedelta(days=1)))

    after = progress_of(q)
    assert (after.pattern_state, after.pattern_updated_at) == (before.pattern_state, before.pattern_updated_at)


def test_a_skip_does_not_replace_the_last_answer(topic):
    """A skip is no answer: a wrong answer skipped in the next quiz, never reviewed, left pending review and
    wrong-only quizzes (both read the last outcome)."""
    q = QuestionFactory(study_topic=topic)
    start = timezone.now() - timedelta(days=2)
    wrong = make_session(topic, {q: "wrong"}, at=start, finalize=True)
    answered = progress_of(q)

    summary = quiz_session_finalize(
        quiz_session=make_session(topic, {q: "skipped"}, at=start + timedelta(days=1)))

    after = progress_of(q)
    assert (after.last_outcome, after.last_attempted_at, after.last_attempt_id) == (
        "wrong", answered.last_attempted_at, wrong.attempts.get().id)
    assert summary["skipped"] == 1 and summary["pending_review_count"] == 1


def test_correct_then_a_skip_then_wrong_is_a_relapse(topic):
    q = QuestionFactory(study_topic=topic)
    start = timezone.now() - timedelta(days=3)
    make_session(topic, {q: "correct"}, at=start, finalize=True)
    make_session(topic, {q: "skipped"}, at=start + timedelta(days=1), finalize=True)
    summary = make_session(topic, {q: "wrong"}, at=start + timedelta(days=2), finalize=True).summary
    assert summary["relapsed"] == 1
    assert progress_of(q).pattern_state == "regressed"


def test_a_questions_first_attempt_is_recorded_even_as_a_skip(topic):
    q = QuestionFactory(study_topic=topic)
    quiz_session_finalize(quiz_session=make_session(topic, {q: "skipped"}))
    assert progress_of(q).last_outcome == "skipped" and progress_of(q).last_attempted_at is not None


def test_finalize_records_the_chronic_and_regressed_questions_it_leaves_in_the_pending_analysis(topic):
    """The analysis runs later, when later sessions may have moved the patterns: finalize records them."""
    chronic, regressed, offered = QuestionFactory.create_batch(3, study_topic=topic)
    start = timezone.now() - timedelta(days=3)
    make_session(topic, {chronic: "wrong", regressed: "correct", offered: "wrong"}, at=start, finalize=True)
    make_session(topic, {offered: "wrong"}, at=start + timedelta(days=1), finalize=True)  # chronic before
    session = make_session(topic, {chronic: "wrong", regressed: "wrong"}, at=start + timedelta(days=2))
    session.question_ids = [*session.question_ids, offered.id]  # offered, never answered: not this session's
    session.save(update_fields=["question_ids"])

    summary = quiz_session_finalize(quiz_session=session)

    analysis = SessionAnalysis.objects.get(quiz_session=session)
    assert (analysis.status, analysis.chronic_question_ids, analysis.regressed_question_ids) == (
        "pending", [chronic.id], [regressed.id])
    assert summary["chronic_remaining"] == 1


def test_the_summarys_counts_leave_deleted_questions_out(topic):
    gone = QuestionFactory(study_topic=topic, deleted_at=timezone.now())
    QuestionProgressFactory(question=gone, pattern_state="chronic_wrong")  # wrong, never reviewed
    q = QuestionFactory(study_topic=topic)

    summary = quiz_session_finalize(quiz_session=make_session(topic, {q: "correct"}))

    assert (summary["pending_review_count"], summary["chronic_count"]) == (0, 0)


def test_the_summarys_regressed_count_includes_questions_in_the_review_queue(topic):
    now = timezone.now()
    QuestionProgressFactory(question=QuestionFactory(study_topic=topic), pattern_state="regressed", review_stage=1,
                            due_at=now + timedelta(days=2), last_reviewed_at=now - timedelta(days=1))

    summary = quiz_session_finalize(quiz_session=make_session(topic, {QuestionFactory(study_topic=topic): "correct"}))

    assert summary["regressed_count"] == 1
