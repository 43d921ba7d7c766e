"""A backing service a process skips for a while once it has failed: a service that hangs costs each call its
timeout, inside the requests that make them (the cache: studyserver.caches.cache_breaker; the broker:
studyserver.celery.broker_breaker)."""

import time


class Breaker:
    """Skip the service for `retry_seconds` after a failure, process-wide; then try it again."""

    def __init__(self, retry_seconds: float) -> None:
        self.retry_seconds = retry_seconds
        self.down_until = 0.0

    def skipping(self) -> bool:
        return time.monotonic() < self.down_until

    def failed(self) -> None:
        self.down_until = time.monotonic() + self.retry_seconds
