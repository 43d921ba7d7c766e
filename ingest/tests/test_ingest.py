"""POST /ingest/study/attempts: gate, resolution, sessions per topic, finalize, idempotence, limits."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from ingest.services import parse_answered_at
from ingest.tests.helpers import publish_questions, topic_pub_id
from publishing import services
from publishing.models import PublishKind
from study.models import QuestionAttempt, QuestionProgress, QuizSession
from study.tests.factories import QuestionFactory, QuestionProgressFactory, StudyTopicFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/ingest/study/attempts"


@pytest.fixture
def quiz():
    """One user, two topics: three questions in the first, one in the second (correct choice 1)."""
    user = UserFactory()
    first, second = StudyTopicFactory(user=user), StudyTopicFactory(user=user)
    questions = [*QuestionFactory.create_batch(3, study_topic=first), QuestionFactory(study_topic=second)]
    return {"user": user, "topics": (first, second), "questions": questions, "pub_ids": publish_questions(questions)}


def post(client, attempts, uuid="client-uuid-1"):
    return client.post(URL, {"client_session_uuid": uuid, "attempts": attempts}, format="json")


def test_gate_token_and_flag(settings, quiz):
    attempts = [{"question_pub_id": quiz["pub_ids"][0], "selected_choice": 1}]
    assert post(APIClient(), attempts).status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert post(wrong, attempts).status_code == 403
    right = APIClient()
    right.credentials(HTTP_AUTHORIZATION=f"Bearer {settings.VIEWER_SYNC_TOKEN}")
    settings.STUDY_INGEST_ENABLED = False
    response = post(right, attempts)
    assert response.status_code == 503 and response.json()["error_code"] == "unavailable"
    settings.STUDY_INGEST_ENABLED = True
    token, settings.VIEWER_SYNC_TOKEN = settings.VIEWER_SYNC_TOKEN, ""
    assert post(right, attempts).status_code == 503
    assert not QuizSession.objects.exists()
    settings.VIEWER_SYNC_TOKEN = token
    lower = APIClient()  # the scheme is case-insensitive (RFC 9110)
    lower.credentials(HTTP_AUTHORIZATION=f"bearer {token}")
    assert post(lower, attempts).status_code == 200


def test_ingest_creates_one_finalized_viewer_session_per_topic(viewer_client, quiz):
    q, pub = quiz["questions"], quiz["pub_ids"]
    response = post(
        viewer_client,
        [
            {"question_pub_id": pub[0], "selected_choice": 1},
            {"question_pub_id": pub[1], "selected_choice": 2},
            {"question_pub_id": pub[2], "is_unsure": True},
            {"question_pub_id": pub[3], "selected_choice": 1, "answered_at": "2024-03-01T10:00:00+09:00"},
            {"question_pub_id": "unknown-pub-id", "selected_choice": 1},
            {"question_pub_id": pub[0]},  # no choice, not unsure: invalid
        ],
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ingested"
    assert body["skipped"] == ["unknown-pub-id", pub[0]]
    first, second = quiz["topics"]
    sessions = {s["topic_pub_id"]: s for s in body["sessions"]}
    assert sessions[topic_pub_id(first.id)] | {"quiz_session_id": 0} == {
        "topic_pub_id": topic_pub_id(first.id),
        "quiz_session_id": 0,
        "correct": 1,
        "wrong": 1,
        "unsure": 1,
        "newly_correct": 1,
        "relapsed": 0,
        "recovered": 0,
    }
    assert sessions[topic_pub_id(second.id)]["correct"] == 1

    stored = QuizSession.objects.get(pk=sessions[topic_pub_id(first.id)]["quiz_session_id"])
    assert (stored.source, stored.status, stored.client_session_uuid) == ("viewer", "done", "client-uuid-1")
    assert stored.finalized_at is not None and stored.user_id == quiz["user"].id
    assert stored.created_at == stored.finished_at <= stored.finalized_at  # one upload: made and finished at once
    assert stored.question_ids == [q[0].id, q[1].id, q[2].id]
    assert (stored.correct_count, stored.wrong_count, stored.unsure_count) == (1, 1, 1)
    progress = {p.question_id: p for p in QuestionProgress.objects.filter(user=quiz["user"])}
    assert progress[q[0].id].last_outcome == "correct" and progress[q[1].id].pattern_state == "wrong"
    assert progress[q[3].id].last_attempted_at == datetime(2024, 3, 1, 1, 0, tzinfo=UTC)


def test_repeat_is_already_ingested_with_stored_counts_and_sr_advances_once(viewer_client, quiz):
    question, pub = quiz["questions"][0], quiz["pub_ids"][0]
    QuestionProgressFactory(question=question, review_stage=0, due_at=timezone.now())  # in the review queue
    attempts = [{"question_pub_id": pub, "selected_choice": 1}]
    assert post(viewer_client, attempts).json()["status"] == "ingested"
    stage_after_first = QuestionProgress.objects.get(question=question).review_stage
    assert stage_after_first == 1
    different = [{"question_pub_id": pub, "selected_choice": 2}, {"question_pub_id": quiz["pub_ids"][1]}]
    repeat = post(viewer_client, different)
    assert repeat.status_code == 200
    assert repeat.json() == {
        "status": "already_ingested",
        "sessions": [
            {"topic_pub_id": topic_pub_id(question.study_topic_id), "correct": 1, "wrong": 0, "unsure": 0}
        ],
    }
    assert QuestionProgress.objects.get(question=question).review_stage == 1
    assert QuizSession.objects.count() == 1 and QuestionAttempt.objects.count() == 1


def test_repeat_after_its_questions_were_deleted_is_still_already_ingested(viewer_client, quiz):
    question, pub = quiz["questions"][0], quiz["pub_ids"][0]
    assert post(viewer_client, [{"question_pub_id": pub, "selected_choice": 1}]).json()["status"] == "ingested"
    question.deleted_at = timezone.now()
    question.save()
    repeat = post(viewer_client, [{"question_pub_id": pub, "selected_choice": 1}])
    assert repeat.status_code == 200 and repeat.json()["status"] == "already_ingested"
    assert repeat.json()["sessions"][0]["correct"] == 1
    # a new uuid over the same deleted question has nothing to ingest
    assert post(viewer_client, [{"question_pub_id": pub, "selected_choice": 1}], uuid="other").status_code == 404


def test_attempts_are_applied_in_answered_at_order_index_breaking_ties(viewer_client, quiz):
    question, pub = quiz["questions"][0], quiz["pub_ids"][0]
    post(
        viewer_client,
        [
            {"question_pub_id": pub, "selected_choice": 1, "answered_at": "2024-01-02T00:00:00Z"},
            {"question_pub_id": pub, "selected_choice": 2, "answered_at": "2024-01-01T00:00:00Z"},
            {"question_pub_id": pub, "selected_choice": 3, "answered_at": "2024-01-02T00:00:00Z"},
        ],
    )
    progress = QuestionProgress.objects.get(question=question)
    assert progress.last_outcome == "wrong"  # the third: latest time, later index
    assert progress.last_attempt.selected_choice == 3
    assert QuestionAttempt.objects.order_by("id").first().selected_choice == 2  # stored in applied order


def test_mixed_owners_is_400_and_nothing_resolvable_is_404(viewer_client, quiz):
    foreign = publish_questions([QuestionFactory()])[0]
    mine = quiz["pub_ids"][0]
    mixed = post(viewer_client, [{"question_pub_id": p, "is_unsure": True} for p in (mine, foreign)])
    assert mixed.status_code == 400 and mixed.json()["error_code"] == "invalid_input"
    nothing = post(viewer_client, [{"question_pub_id": "nope", "selected_choice": 1}])
    assert nothing.status_code == 404 and nothing.json()["error_code"] == "not_found"
    assert not QuizSession.objects.exists()


def test_deleted_question_or_tombstone_is_skipped(viewer_client, quiz):
    gone = quiz["questions"][1]
    gone.deleted_at = timezone.now()
    gone.save()
    services.publish_request(kind=PublishKind.STUDY_QUESTION, source_id=gone.id)
    services.publish_drain()
    deleted_later = quiz["questions"][2]
    deleted_later.deleted_at = timezone.now()  # not yet drained: the live check still skips it
    deleted_later.save()
    body = post(
        viewer_client,
        [
            {"question_pub_id": quiz["pub_ids"][0], "selected_choice": 1},
            {"question_pub_id": quiz["pub_ids"][1], "selected_choice": 1},
            {"question_pub_id": quiz["pub_ids"][2], "selected_choice": 1},
        ],
    ).json()
    assert body["skipped"] == [quiz["pub_ids"][1], quiz["pub_ids"][2]]
    assert QuestionAttempt.objects.count() == 1


def test_a_question_of_a_topic_deleted_but_not_yet_drained_is_skipped(viewer_client, quiz):
    second = quiz["topics"][1]
    second.deleted_at = timezone.now()  # its questions' tombstones are not drained yet: the feed still has them
    second.save()
    response = post(viewer_client, [{"question_pub_id": quiz["pub_ids"][0], "selected_choice": 1},
                                    {"question_pub_id": quiz["pub_ids"][3], "selected_choice": 1}])
    assert response.status_code == 200
    assert response.json()["skipped"] == [quiz["pub_ids"][3]]
    assert list(QuizSession.objects.values_list("study_topic_id", flat=True)) == [quiz["topics"][0].id]


def test_out_of_range_choice_is_skipped_and_all_invalid_is_400(viewer_client, quiz):
    pub = quiz["pub_ids"][0]
    # choice 5 of 4 (the first past the end), and 9
    response = post(viewer_client, [{"question_pub_id": pub, "selected_choice": 5},
                                    {"question_pub_id": pub, "selected_choice": 9}, {"question_pub_id": pub}])
    assert response.status_code == 400
    assert response.json()["skipped"] == [pub]
    assert not QuizSession.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"client_session_uuid": "u", "attempts": []},
        {"client_session_uuid": "", "attempts": [{"question_pub_id": "x"}]},
        {"client_session_uuid": "u" * 65, "attempts": [{"question_pub_id": "x"}]},
        {"attempts": [{"question_pub_id": "x"}]},
        {"client_session_uuid": "u", "attempts": "nope"},
        {"client_session_uuid": "u", "attempts": [{"question_pub_id": "x", "selected_choice": "abc"}]},
        {"client_session_uuid": "u", "attempts": [{"question_pub_id": "x", "is_unsure": "maybe"}]},
        {"client_session_uuid": "u", "attempts": [{"selected_choice": 1}]},
        ["not", "an", "object"],
    ],
)
def test_invalid_bodies_are_400(viewer_client, body):
    response = viewer_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"


def test_malformed_json_is_400(viewer_client):
    response = viewer_client.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_too_many_attempts_is_400(settings, viewer_client):
    settings.INGEST_MAX_ATTEMPTS = 3
    response = post(viewer_client, [{"question_pub_id": "x", "selected_choice": 1}] * 4)
    assert response.status_code == 400
    assert "attempts" in response.json()["errors"]


def test_with_trailing_slash(viewer_client, quiz):
    attempts = [{"question_pub_id": quiz["pub_ids"][0], "is_unsure": True}]
    response = viewer_client.post(URL + "/", {"client_session_uuid": "u", "attempts": attempts}, format="json")
    assert response.status_code == 200


@pytest.mark.postgresql
def test_query_count_is_fixed_per_topic(viewer_client):
    user = UserFactory()
    topic = StudyTopicFactory(user=user)
    questions = QuestionFactory.create_batch(25, study_topic=topic)
    pubs = publish_questions(questions)

    def attempts(n):
        return [{"question_pub_id": pubs[i % 25], "selected_choice": 1 + i % 4} for i in range(n)]

    post(viewer_client, attempts(5), uuid="warm-up")
    with CaptureQueriesContext(connection) as small:
        post(viewer_client, attempts(5), uuid="small-2")
    with CaptureQueriesContext(connection) as large:
        assert post(viewer_client, attempts(500), uuid="large").status_code == 200
    assert len(large) == len(small)  # 500 attempts cost what 5 do
    assert len(large) <= 21
    assert QuestionAttempt.objects.filter(quiz_session__client_session_uuid="large").count() == 500


def test_parse_answered_at():
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert parse_answered_at("2024-05-01T00:00:00Z", now=now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_answered_at("2024-05-01T09:00:00+09:00", now=now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_answered_at("2024-05-01T00:00:00", now=now) == datetime(2024, 5, 1, tzinfo=UTC)  # naive = UTC
    assert parse_answered_at("2030-01-01T00:00:00Z", now=now) == now  # future clamped
    assert parse_answered_at(now.isoformat().replace("12:00", "12:01"), now=now) == now
    for junk in ["yesterday", "2024-13-45T00:00:00Z", "", None, "0001-01-01T00:00:00+05:00", "1900-05-01T00:00:00Z",
                 "1971-12-31T23:59:59Z"]:
        assert parse_answered_at(junk, now=now) == now
    assert parse_answered_at("1972-01-01T00:00:00Z", now=now) == datetime(1972, 1, 1, tzinfo=UTC)
    assert parse_answered_at("2024-05-31T23:00:00-01:00", now=now) == now - timedelta(hours=12)


def test_an_answer_time_of_any_other_kind_means_now(viewer_client, quiz):
    """SPEC: an unparsable `answered_at` is now, whatever its JSON type; the learner's answers are kept."""
    pub = quiz["pub_ids"]
    before = timezone.now()
    kinds = [True, {"at": "2024-01-01"}, ["2024-01-01"], 1714521600, "2024-05-01\x00T00:00:00Z"]
    response = post(viewer_client, [{"question_pub_id": pub[0], "selected_choice": 1, "answered_at": at}
                                    for at in kinds] + [
        {"question_pub_id": pub[1], "selected_choice": 1, "answered_at": "2024-05-01T00:00:00Z"}])
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ingested" and response.json()["skipped"] == []
    unreadable = QuestionAttempt.objects.filter(question=quiz["questions"][0]).values_list("answered_at", flat=True)
    assert len(unreadable) == len(kinds) and all(at >= before for at in unreadable)
    assert QuestionAttempt.objects.get(question=quiz["questions"][1]).answered_at == datetime(2024, 5, 1, tzinfo=UTC)


def test_a_body_nested_too_deeply_is_400(viewer_client):
    body = b'{"client_session_uuid": "deep", "attempts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = viewer_client.post(URL, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["error_code"] == "invalid"


@pytest.mark.parametrize("choice", [0, -1, 2**31 + 1, -(2**31) - 1, 10**30])
def test_a_choice_out_of_range_is_skipped_and_the_rest_of_the_upload_kept(viewer_client, quiz, choice):
    """Only the upper bound was pinned: a choice of 0 let through would reach the attempt's check constraint, and
    the whole upload, every offline answer in it, would answer 409. A choice past 2³¹ was a 400 for the whole
    upload, where 9 of 4 choices is skipped."""
    first, second = quiz["pub_ids"][0], quiz["pub_ids"][1]
    response = post(viewer_client, [{"question_pub_id": first, "selected_choice": choice},
                                    {"question_pub_id": second, "selected_choice": 1}])
    assert response.status_code == 200, response.content
    assert response.json()["skipped"] == [first]
    assert list(QuestionAttempt.objects.values_list("question_id", flat=True)) == [quiz["questions"][1].id]


def test_the_same_answers_uploaded_again_under_another_uuid_move_spaced_repetition_once(viewer_client, quiz):
    """Two devices, or a reinstall, send one offline session twice with different uuids: not a repeat by the uuid,
    but each answer is as old as the one progress already holds, so it is history (SPEC: SR never advances twice).
    It advanced the ladder a second time."""
    question, pub = quiz["questions"][0], quiz["pub_ids"][0]
    reviewed = timezone.now() - timedelta(days=5)
    QuestionProgressFactory(question=question, review_stage=1, due_at=timezone.now() - timedelta(hours=1),
                            last_reviewed_at=reviewed)
    answered = (timezone.now() - timedelta(hours=2)).isoformat()
    attempts = [{"question_pub_id": pub, "selected_choice": 1, "answered_at": answered}]

    first = post(viewer_client, attempts, uuid="device-a")
    after_first = QuestionProgress.objects.values_list("review_stage", "due_at", "last_outcome").get(question=question)
    second = post(viewer_client, attempts, uuid="device-b")

    assert (first.status_code, second.status_code) == (200, 200)
    assert after_first[0] == 2
    assert QuestionProgress.objects.values_list("review_stage", "due_at", "last_outcome").get(
        question=question) == after_first


def test_an_answer_uploaded_again_and_changed_there_still_counts_once(viewer_client, quiz):
    """The second upload repeats the offline session's wrong answer and holds the learner's later change to correct:
    its copy of the wrong is superseded in its own session, and took the first upload's copy out of the pattern with
    it (window ["correct"], stable, recovered 0)."""
    question, pub = quiz["questions"][0], quiz["pub_ids"][0]
    wrong_at, correct_at = timezone.now() - timedelta(hours=3), timezone.now() - timedelta(hours=2)
    wrong = {"question_pub_id": pub, "selected_choice": 2, "answered_at": wrong_at.isoformat()}
    correct = {"question_pub_id": pub, "selected_choice": 1, "answered_at": correct_at.isoformat()}

    assert post(viewer_client, [wrong], uuid="device-a").status_code == 200
    second = post(viewer_client, [wrong, correct], uuid="device-b")

    assert second.status_code == 200, second.content
    assert second.json()["sessions"][0]["recovered"] == 1
    assert QuestionProgress.objects.values_list("last_outcome", "pattern_state", "pattern_window_attempts").get(
        question=question) == ("correct", "recovered", ["wrong", "correct"])


def test_one_wrong_answer_uploaded_twice_is_one_bad_answer_in_the_pattern(viewer_client, quiz):
    """The repeated upload's attempts are stored (another uuid is another session), but an answer at the same
    instant is the same answer: two copies of one wrong answer made the question chronic_wrong (≥2 bad)."""
    question, pub = quiz["questions"][0], quiz["pub_ids"][0]
    attempts = [{"question_pub_id": pub, "selected_choice": 2,
                 "answered_at": (timezone.now() - timedelta(hours=2)).isoformat()}]

    assert post(viewer_client, attempts, uuid="device-a").status_code == 200
    second = post(viewer_client, attempts, uuid="device-b")

    assert second.status_code == 200
    assert QuestionAttempt.objects.filter(question=question).count() == 2
    assert QuestionProgress.objects.values_list("pattern_state", "pattern_window_attempts").get(
        question=question) == ("wrong", ["wrong"])
    session_id = second.json()["sessions"][0]["quiz_session_id"]
    assert QuizSession.objects.get(pk=session_id).summary["chronic_remaining"] == 0
