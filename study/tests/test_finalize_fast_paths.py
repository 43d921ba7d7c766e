"""Finalize's fast paths: the index-ordered LATERAL pattern query (PostgreSQL) returns exactly the rows of the
portable window-function form; explanations leave the request as one fan-out message."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from study.services import finalize
from study.services.finalize import quiz_session_finalize
from study.tasks import explain_question, explain_questions
from study.tests.factories import QuestionFactory, StudyTopicFactory
from study.tests.test_finalize import make_session

pytestmark = pytest.mark.django_db


@pytest.mark.postgresql
def test_lateral_and_window_forms_agree_on_history_abandoned_superseded_and_repeated_attempts(user):
    topic = StudyTopicFactory(user=user)
    long_history, fresh, skipped_only, resent, abandoned_twin = QuestionFactory.create_batch(5, study_topic=topic)
    other_topic_question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    start = timezone.now() - timedelta(days=10)
    # five finalized sessions on long_history (more than the window), one with a skip that must not count
    # (on day 4 the learner changed correct to wrong: only the replacement counts)
    for day, outcome in enumerate(["wrong", "correct", "unsure", "skipped", ["correct", "wrong"]]):
        make_session(topic, {long_history: outcome}, at=start + timedelta(days=day), finalize=True)
    abandoned = make_session(topic, {long_history: "correct", fresh: "correct"}, at=start + timedelta(days=6))
    abandoned.status, abandoned.finished_at = "abandoned", start + timedelta(days=6, minutes=5)
    abandoned.save(update_fields=["status", "finished_at"])
    make_session(topic, {other_topic_question: "wrong"}, at=start, finalize=True)
    # one answer on fresh sent twice (an upload repeated under another uuid): the same instant, counted once, as
    # the copy stored last
    make_session(topic, {fresh: "correct"}, at=start + timedelta(days=7), finalize=True)
    make_session(topic, {fresh: "wrong"}, at=start + timedelta(days=7), finalize=True)
    # one answer on resent sent again, and changed in the upload that repeats it: that copy is superseded in its
    # own session, so it counts for nothing, and must take nothing away from the first copy
    make_session(topic, {resent: "wrong"}, at=start + timedelta(days=7), finalize=True)
    make_session(topic, {resent: ["wrong", "correct"]}, at=start + timedelta(days=7), finalize=True)
    # nor does a copy in an abandoned session
    make_session(topic, {abandoned_twin: "unsure"}, at=start + timedelta(days=7), finalize=True)
    abandoned_copy = make_session(topic, {abandoned_twin: "unsure"}, at=start + timedelta(days=7))
    abandoned_copy.status, abandoned_copy.finished_at = "abandoned", start + timedelta(days=7, hours=2)
    abandoned_copy.save(update_fields=["status", "finished_at"])
    # this session: a superseded answer (wrong, then correct) on long_history, one answer on fresh
    session = make_session(
        topic, {long_history: ["wrong", "correct"], fresh: "unsure", skipped_only: "skipped", resent: "correct",
                abandoned_twin: "correct"},
        at=start + timedelta(days=8),
    )

    winners = finalize._winning_attempts(session)
    winner_ids = [a.id for a in winners.values()]
    lateral = finalize._pattern_rows_lateral(session, list(winners), winner_ids)
    window = finalize._pattern_rows_window(session, list(winners), winner_ids)

    assert [tuple(row) for row in lateral] == [tuple(row) for row in window]
    assert [tuple(row) for row in lateral] == [
        (long_history.id, "unsure"),
        (long_history.id, "wrong"),  # day 4's replacement; its superseded correct is ignored
        (long_history.id, "correct"),  # the winner; the superseded wrong and the abandoned correct are ignored
        (fresh.id, "wrong"),  # day 7's answer, once
        (fresh.id, "unsure"),
        (resent.id, "wrong"),  # day 7's first copy: the second was changed to correct in its session
        (resent.id, "correct"),  # the change
        (resent.id, "correct"),  # the winner
        (abandoned_twin.id, "unsure"),  # its copy in the abandoned session took nothing away
        (abandoned_twin.id, "correct"),
    ]
    assert finalize._pattern_windows(session, winners) == {
        long_history.id: ["unsure", "wrong", "correct"],
        fresh.id: ["wrong", "unsure"],
        resent.id: ["wrong", "correct", "correct"],
        abandoned_twin.id: ["unsure", "correct"],
    }


def test_explanations_leave_as_one_fan_out_message(user, django_capture_on_commit_callbacks):
    topic = StudyTopicFactory(user=user)
    questions = QuestionFactory.create_batch(4, study_topic=topic)
    session = make_session(topic, dict(zip(questions, ["wrong", "unsure", "wrong", "correct"], strict=True)))
    with mock.patch.object(explain_questions, "apply_async") as fan_out:
        with django_capture_on_commit_callbacks(execute=True):
            quiz_session_finalize(quiz_session=session)
    fan_out.assert_called_once_with(args=(sorted(q.id for q in questions[:3]),), kwargs={})


def test_fan_out_sends_one_explanation_per_question_and_survives_a_failed_send():
    calls = []

    def send(*, args, kwargs):
        calls.append(args[0])
        if args[0] == 2:
            raise ConnectionError("broker down")

    with mock.patch.object(explain_question, "apply_async", side_effect=send):
        assert explain_questions.run([1, 2, 3]) == 2
    assert calls == [1, 2, 3]
