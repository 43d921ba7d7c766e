"""Celery tasks of the publishing app: the drain kicked after commit and its periodic sweep."""

from celery import shared_task

from studyserver.tasks_retry import TRANSIENT_ERRORS


@shared_task(autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_backoff_max=60, max_retries=5)
def publish_drain() -> int:
    """Drain the outbox now (kicked after a commit that recorded a request, unless a kick is already queued)."""
    from .services import kick_pending_clear
    from .services import publish_drain as drain

    kick_pending_clear()
    return drain()


@shared_task(autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, retry_backoff_max=60, max_retries=3)
def publish_sweep() -> int:
    """Beat's periodic drain: picks up what a lost kick (broker down at commit) left behind."""
    from .services import publish_drain as drain

    return drain()
