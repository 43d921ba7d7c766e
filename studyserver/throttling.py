"""DRF throttles whose rate is read from settings at request time (so `THROTTLE_*_RATE` overrides apply)."""

import hashlib
import logging
import time
import unicodedata

from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)

# Once the cache has failed to answer, this process's throttles let requests through without asking it for this
# long. A Redis that accepts connections and never answers costs its timeout (REDIS_TIMEOUTS, 5 s) per cache call:
# a sign-in makes four (the address's counter read and written, the account's read, a failure counted).
CACHE_RETRY_SECONDS = 10.0


class _CacheBreaker:
    """Whether the throttles should skip the cache for now, process-wide."""

    def __init__(self) -> None:
        self.down_until = 0.0

    def call(self, scope: str | None, call, *, fallback):
        """`call()`, or `fallback` while the cache is known to be unreachable or when it fails now (logged once
        for each time it is found down)."""
        if time.monotonic() < self.down_until:
            return fallback
        try:
            return call()
        except (RedisError, OSError) as exc:
            self.down_until = time.monotonic() + CACHE_RETRY_SECONDS
            logger.error("throttle %s not applied: the cache is unreachable (%s: %s); throttles let requests "
                         "through for %.0f s", scope, type(exc).__name__, exc, CACHE_RETRY_SECONDS)
            return fallback


cache_breaker = _CacheBreaker()


class RateFromSettings:
    """DRF reads DEFAULT_THROTTLE_RATES once, at import; this reads the scope's rate on each request
    (`off` → None: no limit).

    The counters live in the cache (Redis when REDIS_URL is set). While it is unreachable, requests are let
    through and the failure is logged (`cache_breaker`): a learner can still sign in, and /healthz reports the cache
    down.
    """

    scope: str | None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        allow = super().allow_request
        scope = self.scope or getattr(view, "throttle_scope", None)  # (ScopedRateThrottle reads it from the view)
        return cache_breaker.call(scope, lambda: allow(request, view), fallback=True)


class SettingsScopedRateThrottle(RateFromSettings, ScopedRateThrottle):
    """The view's `throttle_scope`, at its current rate."""


class SettingsSimpleRateThrottle(RateFromSettings, SimpleRateThrottle):
    """A fixed `scope`, for code outside DRF views (the admin login)."""


class AccountSignInThrottle:
    """Failed sign-ins per account, from every address together (THROTTLE_AUTH_ACCOUNT_RATE).

    The "auth" rate limits each address; guesses spread over many addresses would each stay under it. This one
    counts the failures of one username, in fixed windows of the rate's period: an atomic counter in the cache, so
    guesses sent at the same moment are all counted. While an account's window is full, every sign-in for it is
    refused, also with the right password (a guess must not learn it was right); its tokens and sessions keep
    working. Only failures count, so the learner's own sign-ins never lock them out. Like the other throttles, it
    lets requests through while the cache is unreachable.
    """

    scope = "auth_account"

    def __init__(self, username: str) -> None:
        self.rate = RateFromSettings.get_rate(self)
        self.num_failures, self.duration = SimpleRateThrottle.parse_rate(self, self.rate)
        self.now = time.time()
        window = int(self.now // self.duration) if self.duration else 0
        # The key is the name as any backend could read it (case and Unicode form folded), hashed to a fixed size.
        folded = unicodedata.normalize("NFKC", username).casefold()
        digest = hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        self.key = f"throttle_{self.scope}_{digest}_{window}"

    def wait(self) -> float:
        """Seconds until the account's window ends (Retry-After)."""
        return max(1.0, self.duration - self.now % self.duration)

    def allows(self) -> bool:
        """Whether the account may try to sign in now (not counted: a failure is counted by `failed`)."""
        if self.rate is None:
            return True
        return cache_breaker.call(self.scope, lambda: (cache.get(self.key) or 0) < self.num_failures, fallback=True)

    def failed(self) -> None:
        """Count one failed sign-in of the account."""
        if self.rate is not None:
            cache_breaker.call(self.scope, self._count, fallback=None)

    def _count(self) -> None:
        cache.add(self.key, 0, timeout=self.duration + 1)
        try:
            cache.incr(self.key)
        except ValueError:  # (the window's key expired between the two calls)
            cache.add(self.key, 1, timeout=self.duration + 1)


def count_failed_sign_in(sender, credentials: dict, request=None, **kwargs) -> None:
    """`user_login_failed` receiver: a wrong password (or unknown username) counts against that username, whether
    it came through the API's token exchange or the admin's login form."""
    username = credentials.get("username")
    if isinstance(username, str) and username:
        AccountSignInThrottle(username).failed()
