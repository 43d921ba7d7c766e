"""Celery tasks of the study app: thin wrappers that take ids and call a service."""

import logging

from celery import shared_task
from django.db import OperationalError

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=300, max_retries=5)
def extract_document(document_id: int) -> str:
    from study.services.extraction import document_extract

    return document_extract(document_id=document_id)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=300, max_retries=5)
def explain_question(question_id: int) -> str:
    from study.services.explanations import question_explain

    return question_explain(question_id=question_id)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=300, max_retries=5)
def analyze_quiz_session(quiz_session_id: int) -> str:
    from study.services.analysis import quiz_session_analyze

    return quiz_session_analyze(quiz_session_id=quiz_session_id)
