"""GET /api/study-topics/{id}/progress?tab=…: the four tabs, pagination, isolation, query count."""

from datetime import timedelta

import pytest
from django.utils import timezone

from study.tests.factories import QuestionFactory, QuestionProgressFactory, StudyTopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def topic(user):
    return StudyTopicFactory(user=user)


def url(topic_id, tab=None):
    return f"/api/study-topics/{topic_id}/progress" + (f"?tab={tab}" if tab else "")


def progress(topic, **fields):
    return QuestionProgressFactory(question=QuestionFactory(study_topic=topic), **fields)


def ids(response):
    return [row["question_id"] for row in response.json()["results"]]


def test_tabs_select_their_rows(api_client, topic):
    now = timezone.now()
    hour = timedelta(hours=1)
    never_reviewed = progress(topic, last_outcome="wrong", last_attempted_at=now - hour)
    reviewed_before = progress(topic, last_outcome="unsure", last_attempted_at=now, last_reviewed_at=now - hour)
    reviewed_after = progress(topic, last_outcome="wrong", last_attempted_at=now - hour, last_reviewed_at=now)
    correct = progress(topic, last_outcome="correct", last_attempted_at=now, pattern_state="stable")
    chronic = progress(topic, last_outcome="correct", last_attempted_at=now, pattern_state="chronic_wrong")
    regressed = progress(topic, last_outcome="correct", last_attempted_at=now, pattern_state="regressed")
    due = progress(topic, due_at=now - hour)
    later = progress(topic, due_at=now + hour)
    deleted = progress(topic, pattern_state="chronic_wrong")
    deleted.question.deleted_at = now
    deleted.question.save(update_fields=["deleted_at"])
    progress(StudyTopicFactory(user=topic.user), pattern_state="chronic_wrong")  # another topic

    assert ids(api_client.get(url(topic.id, "pending_review"))) == [
        reviewed_before.question_id, never_reviewed.question_id,
    ]
    assert ids(api_client.get(url(topic.id, "chronic"))) == [chronic.question_id]
    assert ids(api_client.get(url(topic.id, "regressed"))) == [regressed.question_id]
    assert ids(api_client.get(url(topic.id, "due") + "&x=1")) == [due.question_id]
    assert reviewed_after.question_id not in ids(api_client.get(url(topic.id, "pending_review")))
    assert correct.question_id and later.question_id


def test_row_shape(api_client, topic):
    row_progress = progress(topic, last_outcome="wrong", pattern_state="wrong", pattern_window_attempts=["wrong"])
    row = api_client.get(url(topic.id, "pending_review")).json()["results"][0]
    assert row["last_outcome"] == "wrong" and row["pattern_window_attempts"] == ["wrong"]
    assert {"last_attempted_at", "pattern_state", "review_stage", "due_at", "last_reviewed_at"} <= set(row)
    assert row["question"]["id"] == row_progress.question_id
    assert row["question"]["choices"] == row_progress.question.choices


def test_paginated_with_fixed_queries(api_client, topic, django_assert_max_num_queries):
    for _ in range(12):
        progress(topic, pattern_state="regressed")
    with django_assert_max_num_queries(5):
        body = api_client.get(url(topic.id, "regressed") + "&limit=5&offset=5").json()
    assert body["count"] == 12 and len(body["results"]) == 5 and body["next"] and body["previous"]


def test_bad_tab_and_isolation(api_client, other_client, topic):
    assert api_client.get(url(topic.id)).status_code == 400
    assert api_client.get(url(topic.id, "everything")).status_code == 400
    assert other_client.get(url(topic.id, "due")).status_code == 404
    assert api_client.get(url(99999999999999999999, "due")).status_code == 404
    topic.deleted_at = timezone.now()
    topic.save(update_fields=["deleted_at"])
    assert api_client.get(url(topic.id, "due")).status_code == 404
    assert api_client.get(f"/api/study-topics/{topic.id}/progress/?tab=due").status_code == 404


@pytest.mark.parametrize("rows", [2, 40])
@pytest.mark.parametrize("tab", ["pending_review", "chronic", "regressed", "due"])
def test_query_count_does_not_grow_with_rows(api_client, user, topic, tab, rows, django_assert_max_num_queries):
    now = timezone.now()
    other_topic = StudyTopicFactory(user=user)
    for i in range(rows):
        progress(
            other_topic if i % 4 == 3 else topic,
            last_outcome="wrong",
            last_attempted_at=now - timedelta(minutes=i),
            pattern_state="chronic_wrong" if i % 2 else "regressed",
            pattern_window_attempts=["wrong", "correct", "wrong"],
            due_at=now - timedelta(hours=i),
        )
    # token auth (1) + the topic (1) + count (1) + page with questions (1)
    with django_assert_max_num_queries(4):
        body = api_client.get(url(topic.id, tab) + "&limit=200").json()
    assert body["count"] == len(body["results"]) > 0
    assert all(row["question"]["study_topic_id"] == topic.id for row in body["results"])


def test_the_due_tab_lists_the_most_overdue_first(api_client, topic):
    now = timezone.now()
    recent = QuestionProgressFactory(question=QuestionFactory(study_topic=topic), review_stage=0,
                                     due_at=now - timedelta(hours=1))
    oldest = QuestionProgressFactory(question=QuestionFactory(study_topic=topic), review_stage=0,
                                     due_at=now - timedelta(hours=3))

    body = api_client.get(f"/api/study-topics/{topic.id}/progress?tab=due").json()

    assert [row["question_id"] for row in body["results"]] == [oldest.question_id, recent.question_id]
