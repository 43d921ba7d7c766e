"""End to end: seed through services, backfill, read the feed as the viewer, post attempts, see the user API."""

from io import StringIO

import pytest
from django.core.management import call_command

from publishing.models import PublishOutbox
from study.services.questions import question_create
from study.services.topics import topic_create

pytestmark = pytest.mark.django_db


def read_whole_feed(viewer_client) -> dict[str, dict]:
    """Follow the feed from 0 as the viewer does; the last item per pub_id wins."""
    state: dict[str, dict] = {}
    after = 0
    while True:
        body = viewer_client.get("/publish/feed", {"after": after, "limit": 2}).json()
        for item in body["items"]:
            state[item["pub_id"]] = item
        after = body["next_after"]
        if not body["has_more"]:
            return state


def test_viewer_round_trip(user, api_client, viewer_client, settings):
    settings.STUDY_PUBLISH_ENABLED = False  # seed with the outbox off: the backfill alone must publish
    topic = topic_create(user=user, name="가스기사 필기", study_type="certification")
    questions = [
        question_create(
            user=user,
            study_topic_id=topic.id,
            subject="가스안전관리" if n < 2 else "연소공학",
            question_text=f"문제 {n}",
            choices=["메탄", "에탄", "프로판", "부탄"],
            correct_choice=1,
        )
        for n in range(3)
    ]
    assert not PublishOutbox.objects.exists()
    settings.STUDY_PUBLISH_ENABLED = True
    call_command("backfill_publish", "--kind", "all", stdout=StringIO())

    feed = read_whole_feed(viewer_client)
    topics = [i for i in feed.values() if i["kind"] == "study_topic"]
    assert [t["payload"]["name"] for t in topics] == ["가스기사 필기"]
    by_text = {i["payload"]["question_text"]: i for i in feed.values() if i["kind"] == "study_question"}
    assert sorted(by_text) == ["문제 0", "문제 1", "문제 2"]
    assert {i["payload"]["topic_pub_id"] for i in by_text.values()} == {topics[0]["pub_id"]}

    response = viewer_client.post(
        "/ingest/study/attempts",
        {
            "client_session_uuid": "ipad-offline-1",
            "attempts": [
                {"question_pub_id": by_text["문제 0"]["pub_id"], "selected_choice": 1},
                {"question_pub_id": by_text["문제 1"]["pub_id"], "selected_choice": 3},
                {"question_pub_id": by_text["문제 2"]["pub_id"], "is_unsure": True},
            ],
        },
        format="json",
    )
    assert response.status_code == 200
    session_summary = response.json()["sessions"][0]
    assert session_summary["topic_pub_id"] == topics[0]["pub_id"]
    assert (session_summary["correct"], session_summary["wrong"], session_summary["unsure"]) == (1, 1, 1)

    detail = api_client.get(f"/api/study-questions/{questions[1].id}")
    assert detail.status_code == 200
    progress = detail.json()["progress"]
    assert progress["last_outcome"] == "wrong" and progress["pattern_state"] == "wrong"
    assert api_client.get(f"/api/study-questions/{questions[0].id}").json()["progress"]["pattern_state"] == "stable"

    sessions = api_client.get("/api/quiz-sessions", {"study_topic_id": topic.id}).json()["results"]
    assert len(sessions) == 1
    assert sessions[0]["source"] == "viewer" and sessions[0]["status"] == "done"
    assert sessions[0]["id"] == session_summary["quiz_session_id"]
    assert (sessions[0]["correct_count"], sessions[0]["wrong_count"], sessions[0]["unsure_count"]) == (1, 1, 1)
