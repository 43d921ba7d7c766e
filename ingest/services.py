"""Viewer write-back: turn offline quiz attempts into finalized quiz sessions (one per topic), once."""

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from publishing.models import PublishKind
from publishing.selectors import live_source_ids, pub_ids_for
from study import scheduling
from study.models import Question, QuestionAttempt, QuizSession
from study.models.quizzes import QuizSource, QuizStatus
from study.services.finalize import quiz_session_finalize
from studyserver.errors import Conflict, InvalidInput, NotFound, violates_unique
from studyserver.locks import advisory_xact_lock
from studyserver.times import EARLIEST_TIME

CLIENT_UUID_CONSTRAINT = "study_quizsession_client_uuid_uniq"
SESSION_COUNTERS = ("correct", "wrong", "unsure", "newly_correct", "relapsed", "recovered")


@dataclass(frozen=True)
class ResolvedAttempt:
    index: int
    question: Question
    selected_choice: int | None
    is_unsure: bool
    outcome: str
    answered_at: datetime


def parse_answered_at(value: Any, *, now: datetime) -> datetime:
    """ISO 8601 with Z or an offset; naive means UTC; the future is clamped to now; unparsable (or before
    1972) means now."""
    if not isinstance(value, str) or not value.strip():
        return now
    try:
        parsed = parse_datetime(value.strip())
        if parsed is None:
            return now
        if timezone.is_naive(parsed):
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return now
    return min(parsed, now) if parsed >= EARLIEST_TIME else now


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _resolve(
    attempts: Sequence[Mapping[str, Any]], *, now: datetime
) -> tuple[list[ResolvedAttempt], list[str], set[int]]:
    """(valid attempts, skipped pub_ids, owners of every resolved question); two queries."""
    pub_to_question = live_source_ids(
        kind=PublishKind.STUDY_QUESTION, pub_ids={a["question_pub_id"] for a in attempts}
    )
    questions = Question.objects.live().filter(
        id__in=set(pub_to_question.values()), study_topic__deleted_at__isnull=True
    ).only("id", "user_id", "study_topic_id", "subject", "choices", "correct_choice")
    by_id = {q.id: q for q in questions}

    resolved: list[ResolvedAttempt] = []
    skipped: list[str] = []
    owners: set[int] = set()
    for index, raw in enumerate(attempts):
        pub_id = raw["question_pub_id"]
        question = by_id.get(pub_to_question.get(pub_id, -1))
        if question is None:
            skipped.append(pub_id)
            continue
        owners.add(question.user_id)
        selected = raw.get("selected_choice")
        is_unsure = bool(raw.get("is_unsure", False))
        if selected is not None and not 1 <= selected <= len(question.choices or []):
            skipped.append(pub_id)
            continue
        try:
            outcome = scheduling.derive_outcome(selected, is_unsure, question.correct_choice)
        except scheduling.InvalidAnswer:
            skipped.append(pub_id)
            continue
        answered_at = parse_answered_at(raw.get("answered_at"), now=now)
        resolved.append(ResolvedAttempt(index, question, selected, is_unsure, outcome, answered_at))
    return resolved, _unique(skipped), owners


def _stored_sessions(*, user_id: int, client_session_uuid: str) -> list[QuizSession]:
    return list(
        QuizSession.objects.filter(user_id=user_id, client_session_uuid=client_session_uuid).order_by(
            "study_topic_id"
        )
    )


def _already_ingested(sessions: list[QuizSession]) -> dict:
    topic_pub_ids = pub_ids_for(kind=PublishKind.STUDY_TOPIC, source_ids=[s.study_topic_id for s in sessions])
    return {
        "status": "already_ingested",
        "sessions": [
            {
                "topic_pub_id": topic_pub_ids.get(s.study_topic_id),
                "correct": s.correct_count,
                "wrong": s.wrong_count,
                "unsure": s.unsure_count,
            }
            for s in sessions
        ],
    }


def _is_client_uuid_conflict(exc: IntegrityError) -> bool:
    return violates_unique(exc, QuizSession, CLIENT_UUID_CONSTRAINT)


def _create_sessions(
    *, user_id: int, client_session_uuid: str, resolved: list[ResolvedAttempt], now: datetime
) -> list[tuple[QuizSession, dict]]:
    """Per topic one done viewer session with its attempts, finalized; caller holds the transaction."""
    ordered = sorted(resolved, key=lambda a: (a.answered_at, a.index))
    by_topic: dict[int, list[ResolvedAttempt]] = {}
    for attempt in ordered:
        by_topic.setdefault(attempt.question.study_topic_id, []).append(attempt)

    sessions: list[QuizSession] = []
    attempt_rows: list[QuestionAttempt] = []
    # Topics in id order: concurrent duplicates meet on the same first unique key, never deadlock.
    for topic_id in sorted(by_topic):
        items = by_topic[topic_id]
        questions = list({a.question.id: a.question for a in items}.values())
        session = QuizSession.objects.create(
            user_id=user_id,
            study_topic_id=topic_id,
            status=QuizStatus.DONE,
            source=QuizSource.VIEWER,
            client_session_uuid=client_session_uuid,
            question_ids=[q.id for q in questions],
            subject_distribution=dict(Counter(q.subject for q in questions)),
            target_per_subject=max(Counter(q.subject for q in questions).values()),
            created_at=now,  # (the row's default, taken at the insert, came after the finish)
            finished_at=now,
        )
        sessions.append(session)
        attempt_rows += [
            QuestionAttempt(
                user_id=user_id,
                quiz_session=session,
                question_id=a.question.id,
                selected_choice=a.selected_choice,
                is_unsure=a.is_unsure,
                outcome=a.outcome,
                answered_at=a.answered_at,
            )
            for a in items
        ]
    QuestionAttempt.objects.bulk_create(attempt_rows)
    return [(session, quiz_session_finalize(quiz_session=session, now=now)) for session in sessions]


def attempts_ingest(
    *, client_session_uuid: str, attempts: Sequence[Mapping[str, Any]], now: datetime | None = None
) -> dict:
    """Ingest a viewer's offline attempts once per client_session_uuid (SPEC "Ingest"); all in one transaction.

    A uuid already stored (a repeat, or a concurrent duplicate: uploads of one uuid take a lock and run one
    after the other; the (uuid, topic) unique constraint is the backstop) answers `already_ingested` with the
    stored counts; SR is never advanced twice.
    """
    now = now or timezone.now()
    resolved, skipped, owners = _resolve(attempts, now=now)
    if len(owners) > 1:
        raise InvalidInput("The attempts belong to questions of more than one owner.")
    if not owners:
        # A repeat whose questions were deleted since the first delivery is still a repeat.
        stored = list(QuizSession.objects.filter(client_session_uuid=client_session_uuid).order_by("study_topic_id"))
        if stored and len({s.user_id for s in stored}) == 1:
            return _already_ingested(stored)
        raise NotFound("No attempt refers to a live published question.", skipped=skipped)
    user_id = owners.pop()

    try:
        with transaction.atomic():
            # One upload per uuid: uploads of one uuid run one after the other, so a second upload with the
            # same uuid is a repeat whether it comes later or at the same moment, even over other topics
            # (the unique constraint only covers (uuid, topic)).
            advisory_xact_lock(f"ingest:{client_session_uuid}")
            stored = _stored_sessions(user_id=user_id, client_session_uuid=client_session_uuid)
            if stored:
                return _already_ingested(stored)
            if not resolved:
                raise InvalidInput("No attempt is a valid answer.", skipped=skipped)
            finalized = _create_sessions(
                user_id=user_id, client_session_uuid=client_session_uuid, resolved=resolved, now=now
            )
            # Read before the commit: once the attempts are stored, nothing may fail and answer an error.
            topic_pub_ids = pub_ids_for(
                kind=PublishKind.STUDY_TOPIC, source_ids=[s.study_topic_id for s, _ in finalized]
            )
    except IntegrityError as exc:
        if not _is_client_uuid_conflict(exc):
            raise
        stored = _stored_sessions(user_id=user_id, client_session_uuid=client_session_uuid)
        if not stored:  # the uuid is held by a session that is not this user's
            raise Conflict("This client_session_uuid is already in use.") from exc
        return _already_ingested(stored)

    return {
        "status": "ingested",
        "skipped": skipped,
        "sessions": [
            {
                "topic_pub_id": topic_pub_ids.get(session.study_topic_id),
                "quiz_session_id": session.id,
                **{key: int(summary.get(key, 0)) for key in SESSION_COUNTERS},
            }
            for session, summary in finalized
        ],
    }
