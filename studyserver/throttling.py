"""DRF throttles whose rate is read from settings at request time (so `THROTTLE_*_RATE` overrides apply)."""

import logging

from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)


class RateFromSettings:
    """DRF reads DEFAULT_THROTTLE_RATES once, at import; this reads the scope's rate on each request
    (`off` → None: no limit).

    The counters live in the cache (Redis when REDIS_URL is set). While it is unreachable, requests are let
    through and the failure is logged: a learner can still sign in, and /healthz reports the cache down.
    """

    scope: str | None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            logger.error("throttle %s not applied: the cache is unreachable (%s: %s)", self.scope,
                         type(exc).__name__, exc)
            return True


class SettingsScopedRateThrottle(RateFromSettings, ScopedRateThrottle):
    """The view's `throttle_scope`, at its current rate."""


class SettingsSimpleRateThrottle(RateFromSettings, SimpleRateThrottle):
    """A fixed `scope`, for code outside DRF views (the admin login)."""
