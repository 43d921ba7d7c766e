"""Questions over the API: create, list/filters, detail with explanation and progress, edit, soft delete."""

import unicodedata
from datetime import timedelta

import pytest
from django.utils import timezone

from publishing.models import PublishOutbox
from study.models import Question, QuestionExplanation, QuestionProgress
from study.tests.factories import QuestionFactory, QuestionProgressFactory, StudyTopicFactory

pytestmark = pytest.mark.django_db
URL = "/api/study-questions"


@pytest.fixture
def topic(user):
    return StudyTopicFactory(user=user)


def payload(topic, **overrides):
    body = {
        "study_topic_id": topic.id,
        "subject": "가스안전관리",
        "question_text": "LNG의 주성분은?",
        "choices": ["메탄", "에탄", "프로판", "부탄"],
        "correct_choice": 1,
        "explanation": "LNG는 메탄이 주성분이다.",
        "source": {"exam": "가스기사", "year": 2023, "number": 12},
    }
    body.update(overrides)
    return body


def outbox_ids():
    return list(PublishOutbox.objects.filter(kind="study_question").values_list("source_id", flat=True))


@pytest.mark.parametrize(("sent", "shown"), [
    (None, {"exam": "", "year": None, "number": None}),
    ({}, {"exam": "", "year": None, "number": None}),
    ({"year": 2021}, {"exam": "", "year": 2021, "number": None}),
    ({"exam": "산업안전기사"}, {"exam": "산업안전기사", "year": None, "number": None}),
])
def test_the_source_always_has_its_three_keys(api_client, topic, sent, shown):
    body = payload(topic)
    del body["source"]
    if sent is not None:
        body["source"] = sent
    created = api_client.post(URL, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["source"] == shown
    assert api_client.get(f"{URL}/{created.json()['id']}").json()["source"] == shown


def test_create_returns_question_and_records_publish(api_client, topic):
    response = api_client.post(URL, payload(topic), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["study_topic_id"] == topic.id and body["correct_choice"] == 1
    assert body["choices"] == ["메탄", "에탄", "프로판", "부탄"]
    assert body["source"] == {"exam": "가스기사", "year": 2023, "number": 12}
    question = Question.objects.get(pk=body["id"])
    assert question.user == topic.user
    assert outbox_ids() == [question.id]


@pytest.mark.parametrize(
    "overrides",
    [
        {"choices": ["only one"]},
        {"choices": [str(i) for i in range(11)]},
        {"choices": ["a", ""]},
        {"choices": ["a", "b\x00"]},
        {"choices": "a,b"},
        {"choices": [1, 2]},  # API.md: [str]; DRF's CharField would store "1", "2"
        {"choices": ["a", True]},
        {"correct_choice": 5},
        {"correct_choice": 0},
        {"correct_choice": 10**30},
        {"subject": ""},
        {"question_text": None},
        {"source": {"year": "soon"}},
        {"study_topic_id": "🙂"},
    ],
)
def test_create_rejects_invalid(api_client, topic, overrides):
    response = api_client.post(URL, payload(topic, **overrides), format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid" and response.json()["errors"]
    assert not Question.objects.exists() and not outbox_ids()


def test_create_in_foreign_or_deleted_topic_is_404(api_client, topic):
    foreign = StudyTopicFactory()
    gone = StudyTopicFactory(user=topic.user, deleted_at=timezone.now())
    assert api_client.post(URL, payload(foreign), format="json").status_code == 404
    assert api_client.post(URL, payload(gone), format="json").status_code == 404


def test_list_filters_isolation_and_queries(api_client, topic, user, django_assert_max_num_queries):
    other_topic = StudyTopicFactory(user=user)
    QuestionFactory(study_topic=topic, subject="연소공학", question_text="연소의 3요소는?")
    QuestionFactory.create_batch(3, study_topic=topic, subject="가스안전관리")
    QuestionFactory(study_topic=other_topic)
    QuestionFactory(study_topic=topic, deleted_at=timezone.now())
    QuestionFactory()  # another user's

    with django_assert_max_num_queries(4):
        body = api_client.get(URL).json()
    assert body["count"] == 5
    assert api_client.get(URL, {"study_topic_id": topic.id}).json()["count"] == 4
    assert api_client.get(URL, {"subject": "연소공학"}).json()["count"] == 1
    assert api_client.get(URL, {"q": "3요소"}).json()["count"] == 1
    assert api_client.get(URL, {"study_topic_id": "x"}).status_code == 400
    assert api_client.get(URL, {"study_topic_id": 10**30}).status_code == 400


def test_detail_adds_ai_explanation_and_progress(api_client, topic, django_assert_max_num_queries):
    question = QuestionFactory(study_topic=topic)
    with django_assert_max_num_queries(4):
        body = api_client.get(f"{URL}/{question.id}").json()
    assert body["ai_explanation"] is None and body["progress"] is None

    QuestionExplanation.objects.create(user=topic.user, question=question, text="메탄(CH4)이 주성분.")
    due = timezone.now() + timedelta(days=1)
    QuestionProgressFactory(
        question=question, last_outcome="wrong", pattern_state="wrong", pattern_window_attempts=["wrong"], due_at=due
    )
    body = api_client.get(f"{URL}/{question.id}/").json()
    assert body["ai_explanation"] == "메탄(CH4)이 주성분."
    assert set(body["progress"]) == {
        "last_outcome", "last_attempted_at", "pattern_state", "pattern_window_attempts", "review_stage", "due_at",
        "last_reviewed_at",
    }
    assert body["progress"]["last_outcome"] == "wrong" and body["progress"]["review_stage"] == 0


def test_patch_changes_only_sent_fields(api_client, topic):
    question = QuestionFactory(study_topic=topic, choices=["a", "b", "c"], correct_choice=3)
    response = api_client.patch(f"{URL}/{question.id}", {"subject": "연소공학"}, format="json")
    assert response.status_code == 200 and response.json()["subject"] == "연소공학"
    question.refresh_from_db()
    assert question.choices == ["a", "b", "c"] and question.correct_choice == 3
    assert outbox_ids() == [question.id]

    # correct_choice is checked against the stored choices when only one side changes
    response = api_client.patch(f"{URL}/{question.id}", {"choices": ["a", "b"]}, format="json")
    assert response.status_code == 400 and "correct_choice" in response.json()["errors"]
    response = api_client.patch(f"{URL}/{question.id}", {"choices": ["a", "b"], "correct_choice": 2}, format="json")
    assert response.status_code == 200
    question.refresh_from_db()
    assert (question.choices, question.correct_choice) == (["a", "b"], 2)


def test_delete_is_soft_and_publishes_tombstone_request(api_client, other_client, topic):
    question = QuestionFactory(study_topic=topic)
    assert other_client.delete(f"{URL}/{question.id}").status_code == 404
    assert api_client.delete(f"{URL}/{question.id}").status_code == 204
    question.refresh_from_db()
    assert question.deleted_at is not None
    assert outbox_ids() == [question.id]
    assert api_client.get(f"{URL}/{question.id}").status_code == 404
    assert api_client.delete(f"{URL}/{question.id}").status_code == 404


def test_other_users_question_is_404(other_client, topic):
    question = QuestionFactory(study_topic=topic)
    assert other_client.get(f"{URL}/{question.id}").status_code == 404
    assert other_client.patch(f"{URL}/{question.id}", {"subject": "x"}, format="json").status_code == 404
    assert other_client.post(f"{URL}/{question.id}/review-complete").status_code == 404
    for bad in ("abc", "99999999999999999999999"):
        assert other_client.get(f"{URL}/{bad}").status_code == 404


def test_review_complete_enters_the_queue(api_client, topic):
    question = QuestionFactory(study_topic=topic)
    QuestionProgressFactory(question=question, last_outcome="wrong", review_stage=3)
    before = timezone.now()
    response = api_client.post(f"{URL}/{question.id}/review-complete")
    assert response.status_code == 200
    progress = QuestionProgress.objects.get(question=question)
    assert progress.review_stage == 0 and progress.last_reviewed_at >= before
    assert progress.due_at == progress.last_reviewed_at + timedelta(days=1)
    assert response.json()["review_stage"] == 0 and response.json()["due_at"] is not None

    fresh = QuestionFactory(study_topic=topic)  # never attempted: progress is created
    assert api_client.post(f"{URL}/{fresh.id}/review-complete/").status_code == 200
    assert QuestionProgress.objects.get(question=fresh).due_at is not None


def test_review_complete_of_a_question_in_a_deleted_topic_is_404(api_client, topic):
    question = QuestionFactory(study_topic=topic)
    topic.deleted_at = timezone.now()
    topic.save(update_fields=["deleted_at"])
    assert api_client.post(f"{URL}/{question.id}/review-complete").status_code == 404
    assert not QuestionProgress.objects.filter(question=question).exists()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_review_complete_that_waited_for_a_finalize_is_timed_after_the_answer(client_for):
    """The learner answers a quiz's last question wrong and opens its explanation (review complete) at the same
    moment. The review waited on the progress row finalize held, committed after it, and stored the time it took
    before waiting: older than the answer, so the question stayed "pending review"."""
    import threading

    from django.db import transaction

    from study.models import QuestionAttempt
    from study.services.quizzes import quiz_attempt_record
    from study.tests.factories import QuizSessionFactory, UserFactory
    from studyserver.testing import hold_until_another_waits, run_concurrently

    user = UserFactory()
    topic = StudyTopicFactory(user=user)
    question = QuestionFactory(study_topic=topic, correct_choice=1)
    progress = QuestionProgressFactory(question=question, pattern_state="wrong", review_stage=1,
                                       due_at=timezone.now() - timedelta(hours=1))
    session = QuizSessionFactory(study_topic=topic, question_ids=[question.id])
    locked = threading.Event()

    def answer_wrong_holding_the_progress_row() -> None:
        with transaction.atomic():
            QuestionProgress.objects.select_for_update().get(pk=progress.pk)  # as finalize holds it
            locked.set()
            assert hold_until_another_waits()
            quiz_attempt_record(user=user, quiz_session_id=session.id, question_id=question.id, selected_choice=2)

    def review_complete():
        locked.wait(10)
        return client_for(user).post(f"{URL}/{question.id}/review-complete")

    response = run_concurrently(answer_wrong_holding_the_progress_row, review_complete)[1]

    assert response.status_code == 200, response.content
    progress.refresh_from_db()
    assert progress.last_attempted_at == QuestionAttempt.objects.get(quiz_session=session).answered_at
    assert progress.last_reviewed_at >= progress.last_attempted_at
    assert progress.due_at == progress.last_reviewed_at + timedelta(days=1)
    pending = client_for(user).get(f"/api/study-topics/{topic.id}/progress?tab=pending_review").json()
    assert pending["count"] == 0, pending


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_edits_at_once_are_checked_one_after_the_other():
    """Fewer choices and a later correct_choice sent together: the second edit is checked against what the
    first left (400), not against its own stale copy (which the database would then refuse)."""
    import threading

    from django.db import transaction
    from rest_framework.exceptions import ValidationError

    from study.models import Question
    from study.services.questions import question_update
    from studyserver.testing import hold_until_another_waits, run_concurrently

    question = QuestionFactory(choices=["a", "b", "c", "d"], correct_choice=1)
    first_saved = threading.Event()

    def fewer_choices() -> None:
        with transaction.atomic():
            question_update(question=Question.objects.get(pk=question.pk), data={"choices": ["a", "b"]})
            first_saved.set()
            assert hold_until_another_waits()

    def later_answer() -> str:
        stale = Question.objects.get(pk=question.pk)  # read before the first edit commits
        first_saved.wait(10)
        try:
            question_update(question=stale, data={"correct_choice": 4})
        except ValidationError as exc:
            return str(exc.detail["correct_choice"][0])
        return "saved"

    _, outcome = run_concurrently(fewer_choices, later_answer)
    assert outcome.startswith("Must be between 1 and 2")
    question.refresh_from_db()
    assert (question.choices, question.correct_choice) == (["a", "b"], 1)


@pytest.mark.parametrize("rows", [2, 40])
def test_list_query_count_is_constant(api_client, user, rows, django_assert_max_num_queries):
    topics = StudyTopicFactory.create_batch(3, user=user)
    for i in range(rows):
        question = QuestionFactory(study_topic=topics[i % 3], source={"exam": "가스기사", "year": 2023, "number": i})
        QuestionProgressFactory(question=question, last_outcome="wrong", due_at=timezone.now())
        QuestionExplanation.objects.create(user=user, question=question, text=f"해설 {i}")
    # token auth (1) + count (1) + page (1)
    with django_assert_max_num_queries(3):
        body = api_client.get(URL, {"limit": 200}).json()
    assert body["count"] == rows and len(body["results"]) == rows


@pytest.mark.parametrize("variant", ["Gas\u00a0Safety", "Gas  Safety", "Gas Safety\u200b", "Gas\u3000Safety",
                                     "\tGas Safety "])
def test_a_subject_that_only_looks_alike_is_the_same_subject(api_client, topic, variant):
    """A no-break, double, ideographic or zero-width space: the subject looked the same and was another one (a quiz
    took target_per_subject from each, the subject filter missed it)."""
    for subject in ("Gas Safety", variant):
        assert api_client.post(URL, payload(topic, subject=subject), format="json").status_code == 201
    row = {"subject": variant, "question_text": "가져온 문제", "choices": ["a", "b"], "correct_choice": 1}
    assert api_client.post(f"{URL}/import", {"study_topic_id": topic.id, "questions": [row]},
                           format="json").json()["created"] == 1
    assert set(Question.objects.values_list("subject", flat=True)) == {"Gas Safety"}
    found = api_client.get(URL, {"study_topic_id": topic.id, "subject": variant}).json()
    assert len(found["results"] if isinstance(found, dict) else found) == 3
    quiz = api_client.post("/api/quiz-sessions", {"study_topic_id": topic.id, "subject_filter": variant},
                           format="json")
    assert quiz.status_code == 201 and quiz.json()["subject_distribution"] == {"Gas Safety": 3}


def test_subjects_and_texts_are_one_spelling_however_they_arrive(api_client, topic):
    """A subject from a macOS file or an NFD source ("가스일반" decomposed) is the subject typed in NFC: one group
    in quizzes and analyses, found by the filters typed either way."""
    nfd_subject, nfd_text = unicodedata.normalize("NFD", "연소공학"), unicodedata.normalize("NFD", "폭발범위는?")
    created = api_client.post(URL, payload(topic, subject=nfd_subject, question_text=nfd_text), format="json")
    assert created.status_code == 201, created.content
    row = {"subject": nfd_subject, "question_text": "두 번째", "choices": ["a", "b"], "correct_choice": 1}
    imported = api_client.post(f"{URL}/import", {"study_topic_id": topic.id, "questions": [row]}, format="json")
    assert imported.status_code == 200 and imported.json()["created"] == 1
    other = Question.objects.exclude(pk=created.json()["id"]).get(study_topic=topic)
    assert api_client.patch(f"{URL}/{other.id}", {"subject": "가스일반"}, format="json").status_code == 200
    assert api_client.patch(f"{URL}/{other.id}", {"subject": nfd_subject}, format="json").status_code == 200

    assert set(Question.objects.filter(study_topic=topic).values_list("subject", flat=True)) == {"연소공학"}
    for spelling in ("연소공학", nfd_subject):
        found = api_client.get(URL, {"study_topic_id": topic.id, "subject": spelling}).json()
        assert len(found["results"] if isinstance(found, dict) else found) == 2
    for spelling in ("폭발", unicodedata.normalize("NFD", "폭발")):
        found = api_client.get(URL, {"study_topic_id": topic.id, "q": spelling}).json()
        assert len(found["results"] if isinstance(found, dict) else found) == 1


def test_questions_of_a_deleted_topic_leave_the_list(api_client, topic, user):
    from study.services.topics import topic_delete

    kept = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    QuestionFactory(study_topic=topic)
    topic_delete(topic=topic)
    assert [q["id"] for q in api_client.get(URL).json()["results"]] == [kept.id]
    assert api_client.get(URL, {"study_topic_id": topic.id}).json()["count"] == 0


def test_an_answer_key_beyond_the_choices_is_refused_before_the_database_sees_it(topic):
    """question_create's own check, the one a write that skipped the serializer meets (the column's check
    constraint would otherwise answer with a database error)."""
    from rest_framework.exceptions import ValidationError

    from study.services.questions import question_create

    with pytest.raises(ValidationError) as refused:
        question_create(
            user=topic.user,
            study_topic_id=topic.id,
            subject="s",
            question_text="q",
            choices=["a", "b"],
            correct_choice=3,
        )
    assert "correct_choice" in refused.value.detail
    assert not Question.objects.exists()


def test_an_edit_of_a_question_deleted_meanwhile_is_404(topic):
    """The view read the question live; deleted before the edit's lock, the edit changes nothing."""
    from study.services.questions import question_delete, question_update
    from studyserver.errors import NotFound

    question = QuestionFactory(study_topic=topic, subject="old")
    question_delete(question=Question.objects.get(pk=question.pk))
    with pytest.raises(NotFound):
        question_update(question=question, data={"subject": "new"})
    question.refresh_from_db()
    assert question.subject == "old"


def test_the_list_is_newest_first(api_client, topic):
    older, newer = QuestionFactory(study_topic=topic), QuestionFactory(study_topic=topic)
    assert [q["id"] for q in api_client.get(URL).json()["results"]] == [newer.id, older.id]
