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


@shared_task(**RETRY, soft_time_limit=60, time_limit=90)
def analyze_quiz_session(quiz_session_id: int) -> str:
    from study.services.analysis import quiz_session_analyze

    return quiz_session_analyze(quiz_session_id=quiz_session_id)
