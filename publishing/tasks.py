"""Celery tasks of the publishing app (drain and periodic sweep; filled in by the publishing issue)."""

from celery import shared_task


@shared_task
def publish_drain() -> int:
    return 0


@shared_task
def publish_sweep() -> int:
    return publish_drain()
