"""Quiz session writes: start, record an attempt (finalizing on the last one), finish, abandon."""

from collections import Counter
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Window
from django.db.models.functions import Random, RowNumber
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from study import scheduling
from study.models import Question, QuestionAttempt, QuizSession, StudyTopic
from study.models.quizzes import QuizMode, QuizStatus
from study.services.finalize import quiz_session_finalize
from study.services.topics import topic_get_live
from study.textnorm import subject_label
from studyserver.errors import Conflict, NotFound, QuizInProgress, violates_unique

_START_ATTEMPTS = 3


def _in_progress_id(*, user: AbstractBaseUser, topic: StudyTopic) -> int | None:
    return (
        QuizSession.objects.filter(user=user, study_topic=topic, status=QuizStatus.IN_PROGRESS)
        .values_list("id", flat=True)
        .first()
    )


def _pick_questions(
    *,
    user: AbstractBaseUser,
    topic: StudyTopic,
    quiz_mode: str,
    target_per_subject: int,
    subject_filter: str,
    wrong_only: bool,
    now: datetime,
) -> list[tuple[int, str]]:
    """(id, subject) of the questions of a new session: up to `target_per_subject` per subject (one query)."""
    eligible = Question.objects.live().filter(user=user, study_topic=topic)
    if subject_filter:
        eligible = eligible.filter(subject=subject_label(subject_filter))
    progress_filter = {}
    if wrong_only:
        progress_filter["progress__last_outcome__in"] = sorted(scheduling.BAD_OUTCOMES)
    if quiz_mode == QuizMode.REVIEW_DUE:
        progress_filter["progress__due_at__lte"] = now
    if progress_filter:
        eligible = eligible.filter(progress__user=user, **progress_filter)
    # review_due takes each subject's most overdue and asks the most overdue first, whatever its subject (grouped
    # by subject, one overdue by a month came after the other subjects' due an hour ago); random shuffles within
    # each subject and groups them, like an exam paper.
    review = quiz_mode == QuizMode.REVIEW_DUE
    order = [F("progress__due_at").asc(), F("id").asc()] if review else [Random()]
    picked = (
        eligible.annotate(rank=Window(RowNumber(), partition_by=[F("subject")], order_by=order))
        .filter(rank__lte=target_per_subject)
        .values_list("id", "subject", "rank", "progress__due_at" if review else "rank")
    )
    rows = sorted(picked, key=lambda row: (row[3], row[0]) if review else (row[1], row[2]))
    return [(qid, subject) for qid, subject, _rank, _due in rows]


def quiz_session_start(
    *,
    user: AbstractBaseUser,
    study_topic_id: int,
    target_per_subject: int = 20,
    subject_filter: str = "",
    wrong_only: bool = False,
    quiz_mode: str = QuizMode.RANDOM,
    now: datetime | None = None,
) -> QuizSession:
    """Start a quiz on a topic with a snapshot of its questions; one in-progress session per topic."""
    now = now or timezone.now()
    topic = topic_get_live(user=user, topic_id=study_topic_id)
    existing = _in_progress_id(user=user, topic=topic)
    if existing is not None:
        raise QuizInProgress(id=existing)
    picked = _pick_questions(
        user=user,
        topic=topic,
        quiz_mode=quiz_mode,
        target_per_subject=target_per_subject,
        subject_filter=subject_filter,
        wrong_only=wrong_only,
        now=now,
    )
    if not picked:
        raise ValidationError({"study_topic_id": ["No eligible question for this quiz."]})
    session = QuizSession(
        user=user,
        study_topic=topic,
        status=QuizStatus.IN_PROGRESS,
        quiz_mode=quiz_mode,
        wrong_only=wrong_only,
        target_per_subject=target_per_subject,
        subject_filter=subject_filter,
        question_ids=[qid for qid, _subject in picked],
        subject_distribution=dict(Counter(subject for _qid, subject in picked)),
        created_at=now,
    )
    for _attempt in range(_START_ATTEMPTS):
        try:
            with transaction.atomic():
                # The topic was read live before the questions were picked; locked now, a delete committed
                # meanwhile makes this a 404, not a quiz on a deleted topic that nothing can answer.
                topic_get_live(user=user, topic_id=topic.pk, lock=True)
                session.save()
            return session
        except IntegrityError as exc:
            if not violates_unique(exc, QuizSession, "study_quizsession_one_in_progress_uniq"):
                raise
            # A concurrent start won the partial unique index; its row is committed by now, unless it was
            # finished or abandoned meanwhile: then the topic is free again and this start goes ahead.
            existing = _in_progress_id(user=user, topic=topic)
            if existing is not None:
                raise QuizInProgress(id=existing) from None
    raise QuizInProgress()  # lost every time, and every winner was gone again before it could be named


def _locked_session(*, user: AbstractBaseUser, quiz_session_id: int) -> QuizSession:
    # The topic comes along (not locked: `of`) for _require_live_topic, without a query of its own.
    session = (
        QuizSession.objects.select_for_update(of=("self",))
        .select_related("study_topic")
        .filter(user=user, pk=quiz_session_id)
        .first()
    )
    if session is None:
        raise NotFound("Quiz session not found.")
    return session


def _require_in_progress(session: QuizSession) -> None:
    if session.status != QuizStatus.IN_PROGRESS:
        raise Conflict(f"The quiz session is {session.status}.")


def _require_live_topic(session: QuizSession) -> None:
    """Answers and finish of a quiz whose topic was deleted would move progress of questions that are gone for
    the learner; abandoning it stays possible."""
    if session.study_topic.deleted_at is not None:
        raise Conflict("The topic of this quiz session was deleted; abandon the session.")


def quiz_attempt_record(
    *,
    user: AbstractBaseUser,
    quiz_session_id: int,
    question_id: int,
    selected_choice: int | None = None,
    is_unsure: bool = False,
    skipped: bool = False,
    now: datetime | None = None,
) -> dict:
    """Record one answer; the answer that completes the session finalizes it in the same transaction.

    The session row is locked, so two concurrent last answers cannot finalize twice. The answer's time is taken
    once the lock is held: an answer that waited for another is not timed before it.
    """
    with transaction.atomic():
        session = _locked_session(user=user, quiz_session_id=quiz_session_id)
        now = now or timezone.now()
        _require_in_progress(session)
        _require_live_topic(session)
        if question_id not in session.question_ids:
            raise ValidationError({"question_id": ["This question is not part of the quiz session."]})
        question = Question.objects.only("id", "choices", "correct_choice").filter(pk=question_id).first()
        if question is None:  # removed from the database (admin) since the snapshot
            raise ValidationError({"question_id": ["This question no longer exists."]})
        if selected_choice is not None and not 1 <= selected_choice <= len(question.choices):
            raise ValidationError({"selected_choice": [f"Must be between 1 and {len(question.choices)}."]})
        try:
            outcome = scheduling.derive_outcome(
                selected_choice, is_unsure, question.correct_choice, skipped=skipped
            )
        except scheduling.InvalidAnswer:
            raise ValidationError(
                {"selected_choice": ["Select a choice, or mark the question unsure or skipped."]}
            ) from None
        QuestionAttempt.objects.create(
            user=user,
            quiz_session=session,
            question=question,
            selected_choice=selected_choice if not skipped else None,
            is_unsure=is_unsure,
            outcome=outcome,
            answered_at=now,
        )
        # Per question of the snapshot still in the database: answered in this session? A question removed
        # since the start (the admin) can no longer be answered, so the others complete the session.
        answered = list(
            Question.objects.filter(pk__in=session.question_ids)
            .annotate(answered=Exists(QuestionAttempt.objects.filter(quiz_session=session, question=OuterRef("pk"))))
            .values_list("answered", flat=True)
        )
        cursor = sum(answered)
        result = {
            "outcome": outcome,
            "is_correct": outcome == scheduling.CORRECT,
            "correct_choice": question.correct_choice,
            "cursor": cursor,
            "status": session.status,
        }
        if all(answered):
            result["summary"] = quiz_session_finalize(quiz_session=session, now=now)
            result["status"] = session.status
    return result


def quiz_session_finish(*, user: AbstractBaseUser, quiz_session_id: int, now: datetime | None = None) -> dict:
    """Finalize now; unanswered questions stay unanswered."""
    with transaction.atomic():
        session = _locked_session(user=user, quiz_session_id=quiz_session_id)
        _require_in_progress(session)
        _require_live_topic(session)
        return quiz_session_finalize(quiz_session=session, now=now)


def quiz_session_abandon(*, user: AbstractBaseUser, quiz_session_id: int, now: datetime | None = None) -> QuizSession:
    """Give up a session: no finalize, progress untouched."""
    with transaction.atomic():
        session = _locked_session(user=user, quiz_session_id=quiz_session_id)
        now = now or timezone.now()  # once locked, like an answer's time
        _require_in_progress(session)
        session.status = QuizStatus.ABANDONED
        session.finished_at = now
        session.save(update_fields=["status", "finished_at", "updated_at"])
    return session
