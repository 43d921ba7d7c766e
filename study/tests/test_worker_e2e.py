"""End to end on a real Celery worker on Redis: upload → extract, wrong answer → explanation → cards."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

NOTE = "# 액화천연가스\n\nLNG의 주성분은 메탄이며 영하 162도에서 액화된다.\n\n프로판은 LPG의 주성분이다.\n"


def wait_for(fetch, predicate, timeout: float = 60.0):
    """Poll `fetch()` until `predicate(value)`; returns the last value."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not predicate(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = fetch()
    return value


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_and_wrong_answer_become_reviewable_cards(redis_worker, api_client):
    topic = api_client.post("/api/study-topics", {"name": "가스기사 e2e"}, format="json")
    assert topic.status_code == 201, topic.content
    topic_id = topic.json()["id"]

    upload = api_client.post(
        "/api/documents",
        {"file": SimpleUploadedFile("lng.md", NOTE.encode(), content_type="text/markdown"),
         "study_topic_id": topic_id, "title": "LNG 노트"},
        format="multipart",
    )
    assert upload.status_code == 201, upload.content
    document_id = upload.json()["id"]
    document = wait_for(lambda: api_client.get(f"/api/documents/{document_id}").json(),
                        lambda d: d["extract_status"] != "pending")
    assert document["extract_status"] == "done"
    assert "LNG의 주성분은 메탄이며" in document["extracted_text"]

    question = api_client.post("/api/study-questions", {
        "study_topic_id": topic_id, "subject": "가스일반", "question_text": "LNG의 주성분은 무엇인가?",
        "choices": ["메탄", "에탄", "프로판", "부탄"], "correct_choice": 1,
    }, format="json")
    assert question.status_code == 201, question.content
    question_id = question.json()["id"]
    quiz = api_client.post("/api/quiz-sessions", {"study_topic_id": topic_id}, format="json")
    assert quiz.status_code == 201, quiz.content
    answer = api_client.post(f"/api/quiz-sessions/{quiz.json()['id']}/attempts",
                             {"question_id": question_id, "selected_choice": 3}, format="json")
    assert answer.status_code == 201, answer.content
    assert (answer.json()["outcome"], answer.json()["status"]) == ("wrong", "done")

    groups = wait_for(lambda: api_client.get("/api/study-cards?needs_review=true").json(),
                      lambda g: sum(len(group["cards"]) for group in g) >= 2)
    [group] = groups
    assert group["source_question_id"] == question_id
    cards = {card["format"]: card for card in group["cards"]}
    assert set(cards) == {"qa", "cloze"}
    assert (cards["qa"]["cue"], cards["qa"]["fact"]) == ("LNG의 주성분은 무엇인가?", "메탄")
    assert cards["cloze"]["cloze_text"] == "LNG의 주성분은 ____이며 영하 162도에서 액화된다."
    assert all(card["needs_review"] for card in cards.values())
    sources = {(e["source_type"], e["source_id"]) for e in cards["qa"]["evidence"]}
    assert {("question", question_id), ("document", document_id)} <= sources

    detail = wait_for(lambda: api_client.get(f"/api/study-questions/{question_id}").json(),
                      lambda q: q.get("ai_explanation"))
    assert detail["ai_explanation"].startswith("정답: 1번 메탄")
    session = wait_for(lambda: api_client.get(f"/api/quiz-sessions/{quiz.json()['id']}").json(),
                       lambda s: (s.get("analysis") or {}).get("status") not in (None, "pending"))
    assert session["analysis"]["status"] == "skipped"
    assert session["analysis"]["reason"] == "insufficient_attempts"
