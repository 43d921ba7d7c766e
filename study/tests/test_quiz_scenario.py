"""End to end over the API: a whole quiz, then one question walked from chronic mistakes to mastery."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from study.models import QuestionProgress
from study.tests.factories import QuestionFactory, StudyTopicFactory

pytestmark = pytest.mark.django_db
DAY0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def run_quiz(client, topic, answers: dict, **start_body) -> dict:
    """Start a quiz, answer each question id with its choice (None = unsure), return the last response."""
    started = client.post("/api/quiz-sessions", {"study_topic_id": topic.id, **start_body}, format="json")
    assert started.status_code == 201, started.json()
    session = started.json()
    assert sorted(session["question_ids"]) == sorted(answers)
    last = None
    for question_id in session["question_ids"]:
        choice = answers[question_id]
        body = {"question_id": question_id, **({"selected_choice": choice} if choice else {"is_unsure": True})}
        last = client.post(f"/api/quiz-sessions/{session['id']}/attempts", body, format="json")
        assert last.status_code == 201, last.json()
    return last.json()


def test_full_quiz_over_the_api(api_client, user):
    topic = StudyTopicFactory(user=user)
    questions = [QuestionFactory(study_topic=topic, subject=s, correct_choice=2) for s in ("A", "A", "B", "B", "C")]
    answers = {questions[0].id: 2, questions[1].id: 2, questions[2].id: 1, questions[3].id: None, questions[4].id: 3}
    last = run_quiz(api_client, topic, answers)
    assert last["status"] == "done" and last["cursor"] == 5
    assert last["summary"] == {
        "correct": 2, "wrong": 2, "unsure": 1, "skipped": 0, "newly_correct": 2, "relapsed": 0, "recovered": 0,
        "chronic_remaining": 0, "pending_review_count": 3, "chronic_count": 0, "regressed_count": 0,
    }
    current = api_client.get("/api/quiz-sessions/current", {"study_topic_id": topic.id})
    assert current.status_code == 404
    pending = api_client.get(f"/api/study-topics/{topic.id}/progress", {"tab": "pending_review"}).json()
    assert pending["count"] == 3


def test_one_question_from_chronic_wrong_to_mastered(api_client, user):
    topic = StudyTopicFactory(user=user)
    question = QuestionFactory(study_topic=topic, correct_choice=1)
    qid = question.id

    def state():
        p = QuestionProgress.objects.get(question=question)
        return p.review_stage, p.due_at, p.pattern_state

    with time_machine.travel(DAY0, tick=False):
        summary = run_quiz(api_client, topic, {qid: 2})["summary"]
        assert summary["wrong"] == 1 and summary["pending_review_count"] == 1
        assert state() == (0, None, "wrong")  # not in the review queue yet

    with time_machine.travel(DAY0 + timedelta(days=1), tick=False):
        summary = run_quiz(api_client, topic, {qid: 3})["summary"]
        assert summary["chronic_remaining"] == 1 and summary["chronic_count"] == 1
        assert state() == (0, None, "chronic_wrong")
        response = api_client.post(f"/api/study-questions/{qid}/review-complete")
        assert response.json()["due_at"] is not None
        assert state() == (0, DAY0 + timedelta(days=2), "chronic_wrong")
        assert api_client.get(f"/api/study-topics/{topic.id}/progress", {"tab": "pending_review"}).json()["count"] == 0
        # not due yet: a review_due quiz has nothing to ask
        assert api_client.post(
            "/api/quiz-sessions", {"study_topic_id": topic.id, "quiz_mode": "review_due"}, format="json"
        ).status_code == 400

    ladder = [
        (2, 1, 5, "recovered", 1),  # day, stage after, next due day, pattern, recovered counter
        (5, 2, 12, "recovered", 0),
        (12, 3, 26, "stable", 0),
    ]
    for day, stage, due_day, pattern, recovered in ladder:
        with time_machine.travel(DAY0 + timedelta(days=day), tick=False):
            due_rows = api_client.get(f"/api/study-topics/{topic.id}/progress", {"tab": "due"}).json()
            assert [row["question_id"] for row in due_rows["results"]] == [qid]
            summary = run_quiz(api_client, topic, {qid: 1}, quiz_mode="review_due")["summary"]
            assert summary["correct"] == 1 and summary["recovered"] == recovered
            assert state() == (stage, DAY0 + timedelta(days=due_day), pattern)

    with time_machine.travel(DAY0 + timedelta(days=26), tick=False):
        run_quiz(api_client, topic, {qid: 1}, quiz_mode="review_due")
        assert state() == (4, None, "stable")  # mastered: out of the queue
        detail = api_client.get(f"/api/study-questions/{qid}").json()
        assert detail["progress"]["review_stage"] == 4 and detail["progress"]["due_at"] is None

    with time_machine.travel(DAY0 + timedelta(days=400), tick=False):
        assert api_client.get(f"/api/study-topics/{topic.id}/progress", {"tab": "due"}).json()["count"] == 0
