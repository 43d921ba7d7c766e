"""Celery tasks of the study app: thin wrappers that take ids and call a service.

Every task is idempotent (the services claim their row and skip finished work), retries
transient database / network errors with exponential backoff, and has time limits.
"""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": True, "retry_backoff_max": 300, "retry_jitter": True,
         "max_retries": 5}


@shared_task(**RETRY, soft_time_limit=300, time_limit=360)
def extract_document(document_id: int) -> str:
    from study.services.extraction import document_extract

    return document_extract(document_id=document_id)


@shared_task(**RETRY, soft_time_limit=180, time_limit=240)
def explain_question(question_id: int) -> str:
    from study.services.explanations import question_explain

    return question_explain(question_id=question_id)


@shared_task(soft_time_limit=60, time_limit=90)
def explain_questions(question_ids: list[int]) -> int:
    """Fan-out of a finalized session's explanations: one explain_question message per id, sent from a worker.

    Finalize sends this one message instead of one per wrong answer (each send costs the request ~0.5 ms).
    A failed send is logged, like enqueue_on_commit; `backfill_explanations` re-enqueues what is missing.
    """
    sent = 0
    for question_id in question_ids:
        try:
            explain_question.apply_async(args=(question_id,))
            sent += 1
        except Exception:  # the broker may be down; the question simply stays unexplained until a backfill
            logger.exception("could not enqueue explain_question(%s)", question_id)
    return sent


@shared_task(**RETRY, soft_time_limit=60, time_limit=90)
def analyze_quiz_session(quiz_session_id: int) -> str:
    from study.services.analysis import quiz_session_analyze

    return quiz_session_analyze(quiz_session_id=quiz_session_id)


@shared_task(**RETRY, soft_time_limit=240, time_limit=300)
def analyses_sweep() -> int:
    """Beat's periodic pass over analyses left pending by a lost kick (broker down at finalize)."""
    from study.services.analysis import analyses_pending_sweep

    return analyses_pending_sweep()
