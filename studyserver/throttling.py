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
        try:
            return (cache.get(self.key) or 0) < self.num_failures
        except (RedisError, OSError) as exc:
            logger.error("throttle %s not applied: the cache is unreachable (%s: %s)", self.scope,
                         type(exc).__name__, exc)
            return True

    def failed(self) -> None:
        """Count one failed sign-in of the account."""
        if self.rate is None:
            return
        try:
            cache.add(self.key, 0, timeout=self.duration + 1)
            try:
                cache.incr(self.key)
            except ValueError:  # (the window's key expired between the two calls)
                cache.add(self.key, 1, timeout=self.duration + 1)
        except (RedisError, OSError) as exc:
            logger.error("throttle %s not counted: the cache is unreachable (%s: %s)", self.scope,
                         type(exc).__name__, exc)


def count_failed_sign_in(sender, credentials: dict, request=None, **kwargs) -> None:
    """`user_login_failed` receiver: a wrong password (or unknown username) counts against that username, whether
    it came through the API's token exchange or the admin's login form."""
    username = credentials.get("username")
    if isinstance(username, str) and username:
        AccountSignInThrottle(username).failed()
