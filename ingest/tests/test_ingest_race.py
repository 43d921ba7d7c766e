"""Ten concurrent posts of the same new client_session_uuid: one ingest, nine already_ingested, SR once."""

import threading

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from ingest.tests.helpers import publish_questions
from publishing.tests.viewer_fixtures import VIEWER_TOKEN
from study.models import QuestionAttempt, QuestionProgress, QuizSession
from study.tests.factories import QuestionFactory, QuestionProgressFactory, StudyTopicFactory, UserFactory
from studyserver.testing import hold_until_another_waits, run_concurrently

POSTERS = 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_ingest_exactly_once():
    user = UserFactory()
    first, second = StudyTopicFactory(user=user), StudyTopicFactory(user=user)
    questions = [QuestionFactory(study_topic=first), QuestionFactory(study_topic=second)]
    QuestionProgressFactory(question=questions[0], review_stage=1, due_at=timezone.now())
    pub_ids = publish_questions(questions)
    body = {
        "client_session_uuid": "same-offline-session",
        "attempts": [{"question_pub_id": pub, "selected_choice": 1} for pub in pub_ids],
    }

    def poster() -> tuple[int, dict]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {VIEWER_TOKEN}")
        response = client.post("/ingest/study/attempts", body, format="json")
        return response.status_code, response.json()

    results = run_concurrently(*[poster] * POSTERS)

    assert [status for status, _ in results] == [200] * POSTERS, results
    statuses = sorted(payload["status"] for _, payload in results)
    assert statuses == ["already_ingested"] * (POSTERS - 1) + ["ingested"]
    for _, payload in results:
        assert sorted(s["correct"] for s in payload["sessions"]) == [1, 1]
    assert QuizSession.objects.filter(client_session_uuid="same-offline-session").count() == 2
    assert QuestionAttempt.objects.count() == 2
    progress = QuestionProgress.objects.get(question=questions[0])
    assert progress.review_stage == 2  # advanced once, from 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_sessions_of_one_user_over_shared_questions_never_deadlock():
    """Different offline sessions answering the same questions in different orders: all ingested, no 5xx."""
    user = UserFactory()
    topic = StudyTopicFactory(user=user)
    questions = QuestionFactory.create_batch(30, study_topic=topic)
    for question in questions[::2]:  # half have progress rows (locked), half are inserted by the ingest
        QuestionProgressFactory(question=question, review_stage=1, due_at=timezone.now())
    pub_ids = publish_questions(questions)

    def post(index: int):
        order = pub_ids[index % 2 :: 1] + pub_ids[: index % 2]
        order = order if index % 3 else list(reversed(order))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {VIEWER_TOKEN}")
        body = {"client_session_uuid": f"offline-{index}",
                "attempts": [{"question_pub_id": pub, "selected_choice": 1 + index % 2} for pub in order]}
        response = client.post("/ingest/study/attempts", body, format="json")
        return response.status_code, response.json()

    results = run_concurrently(*(lambda i=i: post(i) for i in range(6)))

    assert [status for status, _ in results] == [200] * 6, results
    assert {payload["status"] for _, payload in results} == {"ingested"}
    assert QuizSession.objects.filter(user=user, source="viewer").count() == 6
    assert QuestionProgress.objects.filter(user=user).count() == 30


@pytest.mark.postgresql  # holds its transaction until the other waits on PostgreSQL (pg_blocking_pids)
@pytest.mark.django_db(transaction=True)
def test_a_uuid_reused_over_other_topics_at_the_same_moment_is_a_repeat():
    """One uuid is one upload: a second upload with it, over other topics, is already_ingested whether it comes
    later or while the first is still committing (the unique constraint alone covers only (uuid, topic))."""
    from django.db import transaction

    from ingest.services import attempts_ingest

    user = UserFactory()
    first, second = StudyTopicFactory(user=user), StudyTopicFactory(user=user)
    pub_first, pub_second = publish_questions([QuestionFactory(study_topic=first), QuestionFactory(study_topic=second)])
    first_ingested = threading.Event()

    def ingest_first_and_hold() -> str:
        with transaction.atomic():
            result = attempts_ingest(client_session_uuid="reused", attempts=[
                {"question_pub_id": pub_first, "selected_choice": 1}])
            first_ingested.set()
            assert hold_until_another_waits()
        return result["status"]

    def ingest_second() -> str:
        first_ingested.wait(30)
        return attempts_ingest(client_session_uuid="reused", attempts=[
            {"question_pub_id": pub_second, "selected_choice": 1}])["status"]

    assert run_concurrently(ingest_first_and_hold, ingest_second) == ["ingested", "already_ingested"]
    assert list(QuizSession.objects.values_list("study_topic_id", flat=True)) == [first.id]
