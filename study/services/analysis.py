"""Analysis of finished quiz sessions (placeholder until the background-work issue)."""

import logging

logger = logging.getLogger(__name__)


def quiz_session_analyze(*, quiz_session_id: int) -> str:
    logger.info("analysis requested for quiz session %s", quiz_session_id)
    return "requested"
