"""The explanations sweep (beat): questions missed lately that still have no explanation, their task lost or given
up (the broker away at the commit, a flushed queue, the database away through every try), are sent again."""

from datetime import timedelta

import pytest
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from study.models import QuestionAttempt, QuestionExplanation
from study.services.explanations import explanations_missing_resend
from study.tasks import explain_question, explanations_sweep
from study.tests.factories import (
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    StudyTopicFactory,
)

pytestmark = pytest.mark.django_db


def missed(user, ago: timedelta, *, outcome: str = "wrong", answered_ago: timedelta | None = None, **question):
    """A question whose last answer (`outcome`) reached the server `ago` (answered `answered_ago`, default then)."""
    q = QuestionFactory(study_topic=StudyTopicFactory(user=user), **question)
    answered = timezone.now() - (answered_ago or ago)
    attempt = QuestionAttemptFactory(quiz_session__study_topic=q.study_topic, question=q, outcome=outcome,
                                     answered_at=answered)
    QuestionAttempt.objects.filter(pk=attempt.pk).update(created_at=timezone.now() - ago)
    QuestionProgressFactory(question=q, last_outcome=outcome, last_attempted_at=answered, last_attempt=attempt)
    return q


def test_a_question_missed_without_an_explanation_is_explained_by_the_sweep(user, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # sent: run here
    lost = missed(user, timedelta(minutes=30))
    in_flight = missed(user, timedelta(minutes=2))  # its own task may still be trying
    history = missed(user, timedelta(days=3))  # backfill_explanations' work, not beat's
    # answered offline three days ago, written back half an hour ago: it was never sent again
    written_back = missed(user, timedelta(minutes=30), answered_ago=timedelta(days=3))
    known = missed(user, timedelta(minutes=30), outcome="correct")
    deleted = missed(user, timedelta(minutes=30), deleted_at=timezone.now())
    explained = missed(user, timedelta(minutes=30))
    QuestionExplanation.objects.create(user_id=user.pk, question=explained, text="정답: 1번", backend="extractive",
                                       passages=[])

    assert explanations_sweep.apply().get() == 2
    assert set(QuestionExplanation.objects.values_list("question_id", flat=True)) == {lost.id, written_back.id,
                                                                                      explained.id}
    assert not {in_flight.id, history.id, known.id, deleted.id} & set(
        QuestionExplanation.objects.values_list("question_id", flat=True))
    assert explanations_missing_resend() == 0  # done: nothing left to send


def test_the_sweep_runs_from_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["explanations-sweep"]
    assert entry["task"] == explanations_sweep.name and entry["schedule"] <= 600


def test_an_explanations_tries_outlast_a_short_outage():
    """With a backoff factor of 1 the five tries were 1 to 16 s apart: an LLM or a database away for half a minute
    ran them out, and the extractive text was stored for good."""
    waits = [get_exponential_backoff_interval(explain_question.retry_backoff, n, explain_question.retry_backoff_max,
                                              full_jitter=False) for n in range(explain_question.max_retries)]
    assert waits == [15, 30, 60, 120, 240]
