"""Worker heartbeats: whether each queue has a worker that takes its tasks.

Beat sends `worker_heartbeat` to every queue each minute (CELERY_BEAT_SCHEDULE); the worker that takes
it notes the time in the shared cache, and `/healthz` says how long ago each queue's was taken. A worker that has
exited, or that runs but takes nothing (as Celery 5.7 once did after Redis froze), leaves its queue's time behind,
and so do a beat that is not running and a queue whose backlog is longer than LATE_SECONDS.
"""

import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from .caches import CACHE_ERRORS, cache_is_shared

logger = logging.getLogger(__name__)

LATE_SECONDS = 5 * 60  # five heartbeats missed: a queue not seen for this long is "late"
KEY = "worker-heartbeat:{queue}"


def heartbeat_queues() -> tuple[str, ...]:
    return settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_SLOW_QUEUE


@shared_task(ignore_result=True, soft_time_limit=10, time_limit=20)  # one cache write
def worker_heartbeat(queue: str) -> None:
    """Note that a worker took `queue`'s heartbeat now (kept an hour: a time older than that says nothing more)."""
    try:
        cache.set(KEY.format(queue=queue), time.time(), timeout=3600)
    except CACHE_ERRORS as exc:  # the cache is down: /healthz says so on its own
        logger.warning("worker heartbeat of %s not noted: the cache is unreachable (%s)", queue, exc)


def workers_status(*, cache_answers: bool) -> tuple[str, dict[str, int | None]]:
    """("ok" | "late" | "eager" | "unknown", {queue: seconds since a worker took its heartbeat, or None}).

    "eager": tasks run inside the requests, no worker is needed. "unknown": the cache is not shared with the
    workers (no REDIS_URL) or does not answer (`cache_answers`: the caller has just tried it, and a cache that
    hangs is not waited for twice). "late": some queue's heartbeat is older than LATE_SECONDS or was never taken."""
    from .celery import app

    if app.conf.task_always_eager:
        return "eager", {}
    if not cache_answers or not cache_is_shared():
        return "unknown", {}
    queues = heartbeat_queues()
    try:
        seen = cache.get_many([KEY.format(queue=queue) for queue in queues])
    except CACHE_ERRORS:
        return "unknown", {}
    now = time.time()
    ages = {}
    for queue in queues:
        at = seen.get(KEY.format(queue=queue))
        ages[queue] = max(0, round(now - at)) if isinstance(at, int | float) else None
    late = any(age is None or age > LATE_SECONDS for age in ages.values())
    return ("late" if late else "ok"), ages
