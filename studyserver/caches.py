"""The cache the processes share, and what its users do while it is unreachable (cache_breaker)."""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from redis.exceptions import RedisError

from .breakers import Breaker

logger = logging.getLogger(__name__)

# Once the cache has failed to answer, a process does without it for this long: its throttles let requests through,
# explanations run unclaimed, and commits kick the publish drain without the kick flag. A Redis that accepts
# connections and never answers costs its timeout (REDIS_TIMEOUTS, 5 s) per cache call, and a sign-in makes up to
# four (the address's counter read and written, the account's slot taken and given back).
CACHE_RETRY_SECONDS = 10.0

T = TypeVar("T")

# What the cache raises when it cannot be reached (Django's Redis backend: redis-py's errors; sockets: OSError).
CACHE_ERRORS = (RedisError, OSError)


def cache_is_shared() -> bool:
    """Whether the default cache is Redis (REDIS_URL), one for the web workers and the Celery workers alike; the
    local-memory fallback is a cache per process."""
    return "redis" in settings.CACHES["default"]["BACKEND"].lower()


class _CacheBreaker(Breaker):
    """Whether the cache's users that can do without it (the throttles, the explanation claim, the publish kick
    flag) should skip it for now, process-wide."""

    def call(self, what: str, call: Callable[[], T], *, fallback: T) -> T:
        """`call()`, or `fallback` while the cache is known to be unreachable or when it fails now (logged once
        for each time it is found down, as `what` not applied)."""
        if self.skipping():
            return fallback
        try:
            return call()
        except CACHE_ERRORS as exc:
            self.failed()
            logger.error("%s not applied: the cache is unreachable (%s: %s); for %.0f s this process does without "
                         "it (throttles let requests through, explanations run unclaimed, commits kick the publish "
                         "drain)", what, type(exc).__name__, exc, CACHE_RETRY_SECONDS)
            return fallback


cache_breaker = _CacheBreaker(CACHE_RETRY_SECONDS)
