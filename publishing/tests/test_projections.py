"""The pure payload builders: exact API.md shapes, tombstones, UTC ISO times."""

from datetime import UTC, datetime, timedelta, timezone

from publishing import projections
from study.models import CardProgress, MemoCard, Question, StudyTopic

WHEN = datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(hours=9)))


def test_topic_payload_and_tombstone():
    topic = StudyTopic(id=1, name="가스기사", study_type="certification")
    assert projections.project_topic(topic) == {"name": "가스기사", "study_type": "certification"}
    topic.deleted_at = WHEN
    assert projections.project_topic(topic) is None


def test_question_payload_refers_by_pub_id():
    question = Question(
        id=7, subject="안전", question_text="LNG?", choices=["a", "b"], correct_choice=2, explanation="because"
    )
    payload = projections.project_question(question, topic_pub_id="tp", ai_explanation=None, topic_live=True)
    assert payload == {
        "topic_pub_id": "tp",
        "subject": "안전",
        "question_text": "LNG?",
        "choices": ["a", "b"],
        "correct_choice": 2,
        "explanation": "because",
        "ai_explanation": None,
    }
    assert projections.project_question(question, topic_pub_id="tp", ai_explanation=None, topic_live=False) is None
    question.deleted_at = WHEN
    assert projections.project_question(question, topic_pub_id="tp", ai_explanation="x", topic_live=True) is None


def test_card_payload_only_when_approved_and_live():
    card = MemoCard(id=3, format="cloze", cue="c", fact="f", cloze_text="{{f}}", extra={"material": "교재"})
    assert projections.project_card(card, topic_pub_id=None, question_pub_id="qp") == {
        "topic_pub_id": None,
        "question_pub_id": "qp",
        "format": "cloze",
        "cue": "c",
        "fact": "f",
        "cloze_text": "{{f}}",
        "material": "교재",
    }
    card.needs_review = True
    assert projections.project_card(card, topic_pub_id=None, question_pub_id=None) is None
    card.needs_review = False
    card.deleted_at = WHEN
    assert projections.project_card(card, topic_pub_id=None, question_pub_id=None) is None


def test_card_progress_always_published_with_utc_times_and_null_due():
    card = MemoCard(id=3, deleted_at=WHEN)  # a deleted card keeps its progress published
    progress = CardProgress(id=9, card=card, last_outcome="correct", last_reviewed_at=WHEN, review_stage=0)
    assert projections.project_card_progress(progress, card_pub_id="cp", topic_pub_id="tp") == {
        "card_pub_id": "cp",
        "topic_pub_id": "tp",
        "last_outcome": "correct",
        "last_reviewed_at": "2024-05-01T00:30:00+00:00",
        "due_at": None,
        "review_stage": 0,
    }


def test_iso_is_utc_with_offset():
    assert projections.iso(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00+00:00"
    assert projections.iso(None) is None
