"""Pure payload builders of the published read model: one per kind, source row → payload (None = tombstone).

Each function takes the source row (a model instance, or a plain row with the same attributes as the
publish service loads them) and the pub_ids of the rows it refers to; no queries here.
The payload shapes are exactly those of API.md "Publish feed".
"""

from datetime import UTC, datetime
from typing import Any

from study.models import CardProgress, MemoCard, Question, StudyTopic

Payload = dict[str, Any]


def iso(value: datetime | None) -> str | None:
    """A datetime as ISO 8601 in UTC with an explicit offset (stable, so payloads compare equal)."""
    return value.astimezone(UTC).isoformat() if value is not None else None


def project_topic(topic: StudyTopic) -> Payload | None:
    if topic.deleted_at is not None:
        return None
    return {"name": topic.name, "study_type": topic.study_type}


def project_question(
    question: Question, *, topic_pub_id: str | None, ai_explanation: str | None, topic_live: bool
) -> Payload | None:
    """A live question of a live topic; a question deleted, or whose topic was deleted, is a tombstone."""
    if question.deleted_at is not None or not topic_live:
        return None
    return {
        "topic_pub_id": topic_pub_id,
        "subject": question.subject,
        "question_text": question.question_text,
        "choices": list(question.choices or []),
        "correct_choice": question.correct_choice,
        "explanation": question.explanation,
        "ai_explanation": ai_explanation,
    }


def project_card(card: MemoCard, *, topic_pub_id: str | None, question_pub_id: str | None) -> Payload | None:
    """An approved live card; a card in review (or flagged back to it) or deleted is a tombstone."""
    if card.deleted_at is not None or card.needs_review:
        return None
    return {
        "topic_pub_id": topic_pub_id,
        "question_pub_id": question_pub_id,
        "format": card.format,
        "cue": card.cue,
        "fact": card.fact,
        "cloze_text": card.cloze_text,
        "material": card.material,
    }


def project_card_progress(
    progress: CardProgress, *, card_pub_id: str | None, topic_pub_id: str | None
) -> Payload:
    """Every progress row is published (due_at null included), also when its card was deleted."""
    return {
        "card_pub_id": card_pub_id,
        "topic_pub_id": topic_pub_id,
        "last_outcome": progress.last_outcome,
        "last_reviewed_at": iso(progress.last_reviewed_at),
        "due_at": iso(progress.due_at),
        "review_stage": progress.review_stage,
    }
