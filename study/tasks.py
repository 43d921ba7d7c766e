"""Celery tasks of the study app: thin wrappers that take ids and call a service.

Every task is idempotent (the services claim their row and skip finished work), retries
transient database / network errors with exponential backoff, and has time limits.
"""

import logging
import math

from celery import shared_task

from studyserver.tasks_retry import RETRY, TransientRetryTask

logger = logging.getLogger(__name__)

@shared_task(**RETRY, soft_time_limit=300, time_limit=360)
def extract_document(document_id: int) -> str:
    from study.services.extraction import document_extract

    return document_extract(document_id=document_id)


EXPLAIN_SLACK_SECONDS = 60  # retrieval, the extractive fallback, card generation and the writes
EXPLAIN_HARD_AFTER_SOFT_SECONDS = 60


def explain_time_limits() -> tuple[int, int]:
    """explain_question's (soft, hard) time limits in seconds: the HTTP explainer's worst case under the current
    EXPLAINER_TIMEOUT_SECONDS, EXPLAINER_MAX_ATTEMPTS and EXPLAINER_RETRY_BACKOFF_MS, plus room for the rest,
    so the soft limit never cuts the explainer's own retries (and its extractive fallback) short."""
    from study.explain.http import http_explain_max_seconds

    soft = math.ceil(http_explain_max_seconds()) + EXPLAIN_SLACK_SECONDS
    return soft, soft + EXPLAIN_HARD_AFTER_SOFT_SECONDS


class ExplainTask(TransientRetryTask):
    """Time limits read from the settings when a message is sent or run, not when this module is imported."""

    @property
    def soft_time_limit(self) -> int:
        return explain_time_limits()[0]

    @property
    def time_limit(self) -> int:
        return explain_time_limits()[1]


# A run that found the question claimed by another is tried again this long after the claim ends: its holder has
# written the explanation by then (the retry answers "exists"), let the claim go, or died (a claim lasts at most the
# task's hard time limit). One retry, not a string of them that could run out while a dead run's claim lasts.
EXPLAIN_CLAIMED_RETRY_SECONDS = 5


# An explanation's tries wait 15, 30, 60, 120 and 240 s (before jitter): with RETRY's factor of 1 (1 to 16 s) an LLM
# or a database away for half a minute ran them all out, and the extractive text was stored for good.
EXPLAIN_RETRY = {**RETRY, "retry_backoff": 15}


@shared_task(**EXPLAIN_RETRY, base=ExplainTask, bind=True)
def explain_question(self, question_id: int) -> str:
    """On a worker, while retries are left, an LLM that cannot answer is retried with backoff (ExplainerDown is a
    ConnectionError); the last try stores the extractive explanation instead. A question whose LLM call another run
    holds (question_explain: "claimed") is tried again later, not explained with the extractive text; a last try
    leaves it to that run. Run eagerly (no broker: the demo), a retry would run at once, inside the request: it
    falls back at once, as before, and leaves a claimed question to the run that holds it."""
    from study.services.explanations import explanation_claim_seconds_left, question_explain

    last_try = self.request.is_eager or self.request.retries >= self.max_retries
    outcome = question_explain(question_id=question_id, fall_back=last_try, claim_token=self.request.id)
    if outcome == "claimed" and not last_try:
        raise self.retry(countdown=explanation_claim_seconds_left(question_id) + EXPLAIN_CLAIMED_RETRY_SECONDS)
    return outcome


@shared_task(soft_time_limit=60, time_limit=90)
def explain_questions(question_ids: list[int]) -> int:
    """Fan-out of a finalized session's explanations: one explain_question message per id, sent from a worker.

    Finalize sends this one message instead of one per wrong answer (each send costs the request ~0.5 ms).
    A failed send is logged (send_or_log); `backfill_explanations` re-enqueues what is missing.
    """
    from studyserver.celery import send_or_log

    return sum(send_or_log(explain_question, question_id) for question_id in question_ids)


@shared_task(**RETRY, soft_time_limit=60, time_limit=90)
def analyze_quiz_session(quiz_session_id: int) -> str:
    from study.services.analysis import quiz_session_analyze

    return quiz_session_analyze(quiz_session_id=quiz_session_id)


@shared_task(**RETRY, soft_time_limit=60, time_limit=90)
def extracts_sweep() -> int:
    """Beat's periodic pass over documents left pending by a lost send or a task that gave up: sent again."""
    from study.services.extraction import documents_pending_resend

    return documents_pending_resend()


@shared_task(**RETRY, soft_time_limit=240, time_limit=300)
def orphan_files_sweep() -> int:
    """Beat's daily pass over stored upload files no document references, past the hour's grace (a process killed
    between storing a file and committing its row, a cleanup delete that failed): deleted; how many. A store too
    large to list in 4 minutes is swept in part, newest months first (what was deleted stays deleted);
    `sweep_orphan_files` has no limit."""
    from study.services.documents import document_orphan_files_sweep

    return document_orphan_files_sweep().deleted


@shared_task(**RETRY, soft_time_limit=240, time_limit=300)
def explanations_sweep() -> int:
    """Beat's periodic pass over questions missed lately that still have no explanation: their task was lost or gave
    up (see explanations_missing_resend); sent again."""
    from study.services.explanations import explanations_missing_resend

    return explanations_missing_resend()


@shared_task(**RETRY, soft_time_limit=240, time_limit=300)
def analyses_sweep() -> int:
    """Beat's periodic pass over analyses left pending by a lost kick (broker down at finalize)."""
    from study.services.analysis import analyses_pending_sweep

    return analyses_pending_sweep()
