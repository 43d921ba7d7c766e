"""Finalizing a quiz session: progress upsert, pattern state, the SR ladder, the summary, follow-up work."""

from collections import Counter
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from study import scheduling
from study.models import Question, QuestionAttempt, QuestionProgress, QuizSession, SessionAnalysis
from study.models.analyses import AnalysisStatus
from study.models.quizzes import QuizStatus
from study.selectors.progress import topic_progress_counts
from studyserver.celery import enqueue_on_commit

SESSION_COUNTERS = (
    "correct",
    "wrong",
    "unsure",
    "skipped",
    "newly_correct",
    "relapsed",
    "recovered",
    "chronic_remaining",
)
_PROGRESS_UPSERT_FIELDS = [
    "last_outcome",
    "last_attempted_at",
    "last_attempt",
    "pattern_state",
    "pattern_window_attempts",
    "pattern_updated_at",
    "review_stage",
    "due_at",
    "updated_at",
]
_SESSION_FINAL_FIELDS = [
    "status",
    "finished_at",
    "finalized_at",
    "correct_count",
    "wrong_count",
    "unsure_count",
    "skipped_count",
    "summary",
    "updated_at",
]


def quiz_session_finalize(*, quiz_session: QuizSession, now: datetime | None = None) -> dict:
    """Apply a session's answers to progress once, store and return its summary (SPEC "Finalize").

    Idempotent: a session already finalized returns its stored summary and changes nothing.
    Runs in a fixed number of queries whatever the session size, and inside a caller's
    transaction (ingest) as well as on its own.
    """
    with transaction.atomic():
        session = QuizSession.objects.select_for_update().get(pk=quiz_session.pk)
        if session.finalized_at is None:
            _finalize_locked(session, now or timezone.now())  # timed once locked, after any answer it waited for
    for field in _SESSION_FINAL_FIELDS:
        setattr(quiz_session, field, getattr(session, field))
    return session.summary


def _finalize_locked(session: QuizSession, now: datetime) -> None:
    winners = _winning_attempts(session)
    question_ids = sorted(winners)
    # Missing rows are created first (empty), so that the lock below covers first attempts too: two finalizes
    # sharing a new question (concurrent ingests, a quiz and an ingest) then run one after the other, the
    # second seeing the first's result, instead of both inserting and the second overwriting the first.
    # Rows are created and locked in question order, so such finalizes wait for each other, never deadlock.
    QuestionProgress.objects.bulk_create(
        [QuestionProgress(user_id=session.user_id, question_id=qid, created_at=now) for qid in question_ids],
        ignore_conflicts=True,
    )
    prior = {
        p.question_id: p
        for p in QuestionProgress.objects.select_for_update()
        .filter(user_id=session.user_id, question_id__in=question_ids)
        .order_by("question_id")
    }
    windows = _pattern_windows(session, winners)

    counters: Counter[str] = Counter(dict.fromkeys(SESSION_COUNTERS, 0))
    rows: list[QuestionProgress] = []
    chronic_ids: list[int] = []  # the answered questions this session leaves chronic or regressed
    regressed_ids: list[int] = []
    for question_id, attempt in winners.items():
        before = prior.get(question_id)
        progress = before or QuestionProgress(user_id=session.user_id, question_id=question_id, created_at=now)
        had_attempt = before is not None and before.last_attempted_at is not None
        prior_outcome = before.last_outcome if before else None
        prior_pattern = before.pattern_state if before else None
        outcome = attempt.outcome

        # An offline attempt no newer than what progress already holds is history: it joins the pattern window
        # in its place in time, but does not overwrite the newer outcome, move SR or count as a relapse. One as
        # old as the answer progress holds is that answer sent again (an upload repeated under another uuid).
        stale = had_attempt and attempt.answered_at <= before.last_attempted_at
        # A skip is no answer: it does not replace the last one (a wrong answer skipped in the next quiz stayed
        # out of pending review and wrong-only quizzes, and correct, skip, wrong counted no relapse). A question's
        # first attempt is recorded even as a skip.
        passed_over = outcome == scheduling.SKIPPED and had_attempt
        if not stale and not passed_over:
            progress.last_outcome = outcome
            progress.last_attempted_at = attempt.answered_at
            progress.last_attempt_id = attempt.id

        window = windows.get(question_id, [])
        if outcome != scheduling.SKIPPED and window:
            progress.pattern_state = scheduling.pattern_state(window)
            progress.pattern_window_attempts = window
            progress.pattern_updated_at = now

        if progress.due_at is not None and not stale:
            state = scheduling.advance(progress.review_stage, outcome, now, progress.due_at)
            progress.review_stage, progress.due_at = state.stage, state.due_at

        counters[outcome] += 1
        if outcome == scheduling.CORRECT and not had_attempt:
            counters["newly_correct"] += 1
        if outcome == scheduling.WRONG and prior_outcome == scheduling.CORRECT and not stale:
            counters["relapsed"] += 1
        if progress.pattern_state == scheduling.RECOVERED and prior_pattern != scheduling.RECOVERED:
            counters["recovered"] += 1
        if progress.pattern_state == scheduling.CHRONIC_WRONG:
            counters["chronic_remaining"] += 1
            chronic_ids.append(question_id)
        elif progress.pattern_state == scheduling.REGRESSED:
            regressed_ids.append(question_id)
        rows.append(progress)

    if rows:
        # One INSERT … ON CONFLICT (user, question) DO UPDATE for new and existing rows alike: without a pk,
        # bulk_create does not split them into two statements, and a concurrent first insert cannot fail.
        for row in rows:
            row.pk = None
        rows.sort(key=lambda row: row.question_id)
        QuestionProgress.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["user", "question"],
            update_fields=_PROGRESS_UPSERT_FIELDS,
        )

    summary = {key: counters[key] for key in SESSION_COUNTERS}
    summary.update(topic_progress_counts(user_id=session.user_id, topic_id=session.study_topic_id))

    session.status = QuizStatus.DONE
    session.finished_at = session.finished_at or now
    session.finalized_at = now
    session.correct_count = counters[scheduling.CORRECT]
    session.wrong_count = counters[scheduling.WRONG]
    session.unsure_count = counters[scheduling.UNSURE]
    session.skipped_count = counters[scheduling.SKIPPED]
    session.summary = summary
    session.save(update_fields=_SESSION_FINAL_FIELDS)

    bad_ids = [qid for qid, attempt in winners.items() if attempt.outcome in scheduling.BAD_OUTCOMES]
    _schedule_follow_up(session, bad_ids, chronic_ids=sorted(chronic_ids), regressed_ids=sorted(regressed_ids))


def _winning_attempts(session: QuizSession) -> dict[int, QuestionAttempt]:
    """The last attempt per question of this session (one query)."""
    winners: dict[int, QuestionAttempt] = {}
    attempts = QuestionAttempt.objects.filter(quiz_session_id=session.id).only("id", "question_id", "outcome",
                                                                                 "answered_at")
    for attempt in attempts.order_by("answered_at", "id"):
        winners[attempt.question_id] = attempt
    return winners


def _pattern_windows(session: QuizSession, winners: dict[int, QuestionAttempt]) -> dict[int, list[str]]:
    """Outcomes of the last ≤3 non-skipped attempts per question, oldest first (one query).

    Counts the winning attempt of each question in every finalized session of the user, and this session's;
    attempts of abandoned sessions and answers superseded within their session are ignored. Counted attempts of one
    question answered at the same instant are one answer sent twice (an offline session uploaded again under
    another uuid: two devices, a reinstall) and count once, as the copy stored last; a copy that does not count
    itself (superseded within its session, or of an abandoned one) takes no other copy out.
    """
    if not winners:
        return {}
    winner_ids = [a.id for a in winners.values()]
    if connection.vendor == "postgresql":
        rows = _pattern_rows_lateral(session, list(winners), winner_ids)
    else:
        rows = _pattern_rows_window(session, list(winners), winner_ids)
    windows: dict[int, list[str]] = {}
    for question_id, outcome in rows:
        windows.setdefault(question_id, []).append(outcome)
    return {qid: scheduling.pattern_window(outcomes) for qid, outcomes in windows.items()}


_PATTERN_SQL = """
SELECT q.question_id, w.outcome
FROM unnest(%(questions)s::bigint[]) AS q(question_id)
CROSS JOIN LATERAL (
    SELECT a.outcome, a.answered_at, a.id
    FROM study_questionattempt a
    JOIN study_quizsession s ON s.id = a.quiz_session_id
    WHERE a.question_id = q.question_id AND a.user_id = %(user)s AND a.outcome <> %(skipped)s
      AND ((s.finalized_at IS NOT NULL AND a.quiz_session_id <> %(session)s) OR a.id = ANY(%(winners)s::bigint[]))
      AND NOT EXISTS (
          SELECT 1 FROM study_questionattempt later
          WHERE later.quiz_session_id = a.quiz_session_id AND later.question_id = a.question_id
            AND (later.answered_at, later.id) > (a.answered_at, a.id)
      )
      AND NOT EXISTS (  -- a copy stored later of the same answer that counts itself, by the three rules above
          SELECT 1 FROM study_questionattempt twin
          JOIN study_quizsession ts ON ts.id = twin.quiz_session_id
          WHERE twin.question_id = a.question_id AND twin.answered_at = a.answered_at AND twin.id > a.id
            AND twin.outcome <> %(skipped)s
            AND ((ts.finalized_at IS NOT NULL AND twin.quiz_session_id <> %(session)s)
                 OR twin.id = ANY(%(winners)s::bigint[]))
            AND NOT EXISTS (
                SELECT 1 FROM study_questionattempt twin_later
                WHERE twin_later.quiz_session_id = twin.quiz_session_id AND twin_later.question_id = twin.question_id
                  AND (twin_later.answered_at, twin_later.id) > (twin.answered_at, twin.id)
            )
      )
    ORDER BY a.answered_at DESC, a.id DESC
    LIMIT %(window)s
) w
ORDER BY q.question_id, w.answered_at, w.id
"""


def _pattern_rows_lateral(session: QuizSession, question_ids: list[int], winner_ids: list[int]) -> list[tuple]:
    """Per question, its newest attempts from the (question, answered_at) index, stopping at the window size.

    The checks for a later attempt of the same session and for a twin are planned from a question's average
    history: where that is short, PostgreSQL reads each question's attempts once for them (a question answered
    240 times, against an average of 20, cost ~0.8 ms here). Forcing index probes instead (`OFFSET 0` in both
    subqueries) was 20× faster on such questions, but 3× slower once the planner expected about ten attempts a
    question or fewer (it then reads them all and sorts them), so the plan stays the planner's choice. A twin is
    probed on (question, answered_at) and is almost never there, so checking that it counts costs next to nothing;
    `DISTINCT ON (answered_at)` instead of the twin check read and sorted each question's whole history (2-3×
    slower on questions answered ~26 times).
    """
    params = {"questions": question_ids, "user": session.user_id, "skipped": scheduling.SKIPPED, "session": session.id,
              "winners": winner_ids, "window": scheduling.PATTERN_WINDOW}
    with connection.cursor() as cursor:
        cursor.execute(_PATTERN_SQL, params)
        return cursor.fetchall()


def _pattern_rows_window(session: QuizSession, question_ids: list[int], winner_ids: list[int]) -> list[tuple]:
    """The same rows with a window function (databases without LATERAL/arrays, e.g. the SQLite demo)."""
    counted = (
        QuestionAttempt.objects.exclude(outcome=scheduling.SKIPPED)
        .filter(
            (Q(quiz_session__finalized_at__isnull=False) & ~Q(quiz_session_id=session.id)) | Q(id__in=winner_ids)
        )
        .filter(~Exists(QuestionAttempt.later_in_its_session()))
    )
    # A copy stored later of the same answer, itself counted (a copy superseded in its own session is not).
    twin = counted.filter(
        question_id=OuterRef("question_id"), answered_at=OuterRef("answered_at"), id__gt=OuterRef("id")
    )
    return list(
        counted.filter(user_id=session.user_id, question_id__in=question_ids)
        .filter(~Exists(twin))
        .annotate(
            recency=Window(
                RowNumber(), partition_by=[F("question_id")], order_by=[F("answered_at").desc(), F("id").desc()]
            )
        )
        .filter(recency__lte=scheduling.PATTERN_WINDOW)
        .order_by("question_id", "answered_at", "id")
        .values_list("question_id", "outcome")
    )


def _schedule_follow_up(session: QuizSession, bad_question_ids: list[int], *, chronic_ids: list[int],
                        regressed_ids: list[int]) -> None:
    """A pending analysis row now, holding the questions this session leaves chronic or regressed (the analysis
    runs later, when later sessions may have changed their patterns); explanations and the analysis are enqueued
    after commit."""
    from study.tasks import analyze_quiz_session, explain_questions

    SessionAnalysis.objects.bulk_create(
        [SessionAnalysis(user_id=session.user_id, quiz_session_id=session.id, status=AnalysisStatus.PENDING,
                         chronic_question_ids=chronic_ids, regressed_question_ids=regressed_ids)],
        ignore_conflicts=True,
    )
    candidates = []
    if bad_question_ids:
        candidates = list(
            Question.objects.filter(
                id__in=bad_question_ids, deleted_at__isnull=True, ai_explanation__isnull=True
            ).values_list("id", flat=True)
        )
    if candidates:  # one message; a worker fans it out to one explain_question per question
        enqueue_on_commit(explain_questions, sorted(candidates))
    enqueue_on_commit(analyze_quiz_session, session.id)
