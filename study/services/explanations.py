"""Explanations of wrong/unsure questions (placeholder until the background-work issue)."""

import logging

logger = logging.getLogger(__name__)


def question_explain(*, question_id: int) -> str:
    logger.info("explanation requested for question %s", question_id)
    return "requested"
