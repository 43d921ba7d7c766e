"""Which cache the processes share."""

from django.conf import settings


def cache_is_shared() -> bool:
    """Whether the default cache is Redis (REDIS_URL), one for the web workers and the Celery workers alike; the
    local-memory fallback is a cache per process."""
    return "redis" in settings.CACHES["default"]["BACKEND"].lower()
