"""Analysis of finished quiz sessions: per-subject accuracy against the topic's history, weak spots."""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from study.models import QuestionAttempt, QuizSession, SessionAnalysis
from study.models.analyses import AnalysisStatus
from study.models.quizzes import Outcome, QuizStatus

logger = logging.getLogger(__name__)

MIN_BAD_ATTEMPTS = 5
WEAKEST_COUNT = 3
INSUFFICIENT = "insufficient_attempts"


def _accuracy(correct: int, answered: int) -> float | None:
    return round(correct / answered, 3) if answered else None


def _session_counts(session: QuizSession) -> dict[str, dict[str, int]]:
    """Per subject: correct / wrong / unsure of the last attempt per question in this session."""
    last: dict[int, tuple] = {}
    attempts = (
        QuestionAttempt.objects.filter(quiz_session=session)
        .order_by("answered_at", "id")
        .values_list("question_id", "question__subject", "outcome")
    )
    for question_id, subject, outcome in attempts:
        last[question_id] = (subject, outcome)
    counts: dict[str, dict[str, int]] = {}
    for subject, outcome in last.values():
        row = counts.setdefault(subject, {"correct": 0, "wrong": 0, "unsure": 0})
        if outcome in row:
            row[outcome] += 1
    return counts


def _topic_accuracy(session: QuizSession, subjects: list[str]) -> dict[str, float | None]:
    """Accuracy per subject over the user's finished sessions in the topic, each counted as its own accuracy is: by
    the last answer per question of the session (an answer changed within a session counted twice, so a topic
    whose only history was this session had another accuracy than the session), skips left out. An answer stored
    twice (the same question at the same instant: an offline session written back under two uuids) counts once, as
    finalize counts it in the pattern window."""
    finished = Q(quiz_session__finalized_at__lte=session.finalized_at) if session.finalized_at else Q()
    counted = (
        QuestionAttempt.objects.filter(
            finished,  # (sessions finished after this one, before its analysis ran, are not its history)
            user_id=session.user_id,
            quiz_session__study_topic_id=session.study_topic_id,
            quiz_session__status=QuizStatus.DONE,
        )
        .exclude(Exists(QuestionAttempt.later_in_its_session()))
        .exclude(outcome=Outcome.SKIPPED)
    )
    twin = counted.filter(question_id=OuterRef("question_id"), answered_at=OuterRef("answered_at"),
                          id__gt=OuterRef("id"))  # a copy stored later that counts itself
    rows = (
        counted.filter(question__subject__in=subjects)
        .exclude(Exists(twin))
        .values("question__subject")
        .annotate(answered=Count("id"), correct=Count("id", filter=Q(outcome=Outcome.CORRECT)))
    )
    return {r["question__subject"]: _accuracy(r["correct"], r["answered"]) for r in rows}


def _analysis_values(session: QuizSession) -> dict:
    """The analysis of the session as it finished: its history is the sessions finished by then, and its chronic
    and regressed questions are the ones finalize recorded in the pending row (read as progress when the task ran,
    a later session's answers had moved them; kept as they are here)."""
    counts = _session_counts(session)
    bad = sum(row["wrong"] + row["unsure"] for row in counts.values())
    if bad < MIN_BAD_ATTEMPTS:
        return {"status": AnalysisStatus.SKIPPED, "reason": INSUFFICIENT,
                "chronic_question_ids": [], "regressed_question_ids": []}
    history = _topic_accuracy(session, list(counts))
    subjects = []
    for subject in sorted(counts):
        row = counts[subject]
        answered = row["correct"] + row["wrong"] + row["unsure"]
        subjects.append({
            "subject": subject, **row,
            "accuracy": _accuracy(row["correct"], answered),
            "topic_accuracy": history.get(subject),
        })
    missed_subjects = [s for s in subjects if s["wrong"] + s["unsure"]]  # (one answered all right is no weakness)
    weakest = sorted(missed_subjects, key=lambda s: (s["accuracy"], -(s["wrong"] + s["unsure"]), s["subject"]))
    return {
        "status": AnalysisStatus.DONE,
        "reason": "",
        "subjects": subjects,
        "weakest_subjects": [{"subject": s["subject"], "accuracy": s["accuracy"]} for s in weakest[:WEAKEST_COUNT]],
    }


def quiz_session_analyze(*, quiz_session_id: int) -> str:
    """Analyse a finished quiz session once. Returns done / skipped, or not_ready / already / busy / missing."""
    session = QuizSession.objects.filter(pk=quiz_session_id).first()
    if session is None:
        return "missing"
    if session.status != QuizStatus.DONE:
        logger.info("analyze quiz session %s: status %s, nothing to do", quiz_session_id, session.status)
        return "not_ready"
    try:
        SessionAnalysis.objects.get_or_create(quiz_session=session, defaults={"user_id": session.user_id})
    except IntegrityError:
        if not QuizSession.objects.filter(pk=quiz_session_id).exists():
            return "missing"  # deleted (with its user) since it was read
        raise
    with transaction.atomic():
        analysis = (
            SessionAnalysis.objects.select_for_update(skip_locked=True)
            .filter(quiz_session=session, status=AnalysisStatus.PENDING)
            .first()
        )
        if analysis is None:
            logger.info("analyze quiz session %s: already analysed or being analysed", quiz_session_id)
            return "already"
        values = _analysis_values(session)
        for field, value in values.items():
            setattr(analysis, field, value)
        analysis.save(update_fields=[*values, "updated_at"])
    logger.info("analyze quiz session %s: %s %s", quiz_session_id, analysis.status, analysis.reason)
    return str(analysis.status)


def analyses_pending_sweep(*, older_than: timedelta = timedelta(minutes=10), limit: int = 200) -> int:
    """Analyse finished sessions whose analysis is still pending well after finalize: its task was lost (the
    broker was down at commit). Returns how many were tried; each is the idempotent quiz_session_analyze."""
    stale = (
        SessionAnalysis.objects.filter(status=AnalysisStatus.PENDING, created_at__lt=timezone.now() - older_than)
        .order_by("id")
        .values_list("quiz_session_id", flat=True)[:limit]
    )
    quiz_session_ids = list(stale)
    for quiz_session_id in quiz_session_ids:
        try:
            quiz_session_analyze(quiz_session_id=quiz_session_id)
        except Exception:  # one that keeps failing must not hold back the others; the next sweep retries it
            logger.exception("analyses sweep: quiz session %s failed", quiz_session_id)
    return len(quiz_session_ids)
