"""Question writes: create, edit, move to another topic, soft delete and bulk import, each recording its publish
request."""

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from publishing.models import PublishKind
from publishing.services import publish_request, publish_request_many
from study.models import CardProgress, MemoCard, Question, StudyTopic
from study.services.explanations import explanation_forget
from study.services.topics import topic_get_live
from study.textnorm import nfc, subject_label
from studyserver.errors import NotFound

PUBLISH_KIND = "study_question"
EDITABLE_FIELDS = ("subject", "question_text", "choices", "correct_choice", "explanation", "source")
# Stored NFC, as they are grouped (subjects in quizzes and analyses) and searched by what the learner types; the
# subject with its white space as subject_label has it too.
_NORMALIZED = {"subject": subject_label, "question_text": nfc}


def _check_correct_choice(choices: Sequence[str], correct_choice: int) -> None:
    if not 1 <= correct_choice <= len(choices):
        raise ValidationError({"correct_choice": [f"Must be between 1 and {len(choices)} (the number of choices)."]})


def question_create(
    *,
    user: AbstractBaseUser,
    study_topic_id: int,
    subject: str,
    question_text: str,
    choices: list[str],
    correct_choice: int,
    explanation: str = "",
    source: dict | None = None,
) -> Question:
    """Create a question in one of the user's live topics (else 404)."""
    _check_correct_choice(choices, correct_choice)
    with transaction.atomic():
        # Locked until the commit: a concurrent topic delete either waits, then tombstones this question with
        # the topic's others, or went first and this is a 404. Unlocked, a question committed meanwhile stayed
        # live in the feed under a deleted topic.
        topic = topic_get_live(user=user, topic_id=study_topic_id, lock=True)
        question = Question.objects.create(
            user=user,
            study_topic=topic,
            subject=subject_label(subject),
            question_text=nfc(question_text),
            choices=choices,
            correct_choice=correct_choice,
            explanation=explanation,
            source=source or {},
        )
        publish_request(kind=PUBLISH_KIND, source_id=question.id)
    return question


def question_update(*, question: Question, data: dict[str, Any]) -> Question:
    """Change only the given editable fields; correct_choice must stay within the (new) choices.

    The row is re-read under a lock, so two edits at once (new choices, another correct_choice) are checked
    one after the other against what the other left, never both against a stale copy. A new answer key
    drops the explanation and its unreviewed cards, and explains the question again (explanation_forget).
    """
    changed = [field for field in EDITABLE_FIELDS if field in data]
    with transaction.atomic():
        current = (
            Question.objects.select_for_update(no_key=True).filter(pk=question.pk, deleted_at__isnull=True).first()
        )
        if current is None:
            raise NotFound("Question not found.")
        for field in EDITABLE_FIELDS:
            setattr(question, field, getattr(current, field))
        for field in changed:
            value = data[field]
            if field in _NORMALIZED:
                value = _NORMALIZED[field](value)
            setattr(question, field, value if field != "source" else (value or {}))
        _check_correct_choice(question.choices, question.correct_choice)
        question.save(update_fields=[*changed, "updated_at"])
        explanation_forget(before=current, after=question)
        publish_request(kind=PUBLISH_KIND, source_id=question.id)
    return question


def question_move(*, question: Question, topic: StudyTopic) -> None:
    """Move a question to another topic of its owner (the admin does; the API has no such edit), and the cards made
    from it with it: a card's topic is its question's (card_candidate_create copies it), which the topics' card
    counts and the feed's `topic_pub_id` of the cards and their progress follow. The caller has checked that the
    topic is live and the owner's."""
    now = timezone.now()
    with transaction.atomic():
        question.study_topic, question.updated_at = topic, now
        question.save(update_fields=["study_topic", "updated_at"])
        cards = MemoCard.objects.filter(source_question_id=question.pk).exclude(study_topic_id=topic.pk)
        card_ids = list(cards.values_list("pk", flat=True))
        MemoCard.objects.filter(pk__in=card_ids).update(study_topic=topic, updated_at=now)
        publish_request(kind=PUBLISH_KIND, source_id=question.pk)
        publish_request_many(kind=PublishKind.STUDY_CARD, source_ids=card_ids)
        progress_ids = CardProgress.objects.filter(card_id__in=card_ids).values_list("pk", flat=True)
        publish_request_many(kind=PublishKind.STUDY_CARD_PROGRESS, source_ids=list(progress_ids))


def question_delete(*, question: Question) -> bool:
    """Soft delete; the viewer gets a tombstone. False when it was deleted already (see topic_delete)."""
    now = timezone.now()
    with transaction.atomic():
        if not question.update_if_live(deleted_at=now, updated_at=now):
            return False
        publish_request(kind=PUBLISH_KIND, source_id=question.id)
    return True


def questions_import(*, user: AbstractBaseUser, topic: StudyTopic, rows: Sequence[dict[str, Any]]) -> list[Question]:
    """Create already-validated question rows in one transaction: one INSERT and one outbox INSERT."""
    if not rows:
        return []
    questions = [
        Question(
            user=user,
            study_topic=topic,
            subject=subject_label(row["subject"]),
            question_text=nfc(row["question_text"]),
            choices=row["choices"],
            correct_choice=row["correct_choice"],
            explanation=row.get("explanation") or "",
            source=row.get("source") or {},
        )
        for row in rows
    ]
    for question in questions:
        _check_correct_choice(question.choices, question.correct_choice)
    with transaction.atomic():
        topic_get_live(user=user, topic_id=topic.pk, lock=True)  # live until the commit, as in question_create
        created = Question.objects.bulk_create(questions)
        publish_request_many(kind=PUBLISH_KIND, source_ids=[q.id for q in created])
    return created
