"""Throttles: DRF's, with their rate read from settings at request time (so `THROTTLE_*_RATE` overrides apply) and
counted atomically in fixed windows (FixedWindowRateThrottle); the failed sign-ins of an account
(AccountSignInThrottle). While the cache is unreachable they let requests through
(studyserver.caches.cache_breaker)."""

import hashlib
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from .caches import cache_breaker


def _window_increment(key: str, timeout: int) -> int:
    """Add one to the counter `key` (created at 0, kept `timeout` seconds) in one atomic step of the cache: its new
    value."""
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # (the window's key expired between the two calls)
        cache.add(key, 1, timeout=timeout)
        return 1


class FixedWindowRateThrottle(SimpleRateThrottle):
    """DRF's throttle, counting in fixed windows of the rate's period with one atomic increment per request.

    DRF's own keeps each request's time in one cache entry that it reads, trims and writes back: requests sent at
    the same moment read the same history, and as many as 30 of 40 token requests sent at once from one address got
    past a rate of 5/min; a history longer than a rate lowered meanwhile left its 429s without a `Retry-After`. A
    window lets at most twice the rate through across its edge, as the account throttle's does."""

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        return _window_increment(f"{self.key}_{window}", self.duration + 1) <= self.num_requests

    def wait(self) -> float:
        """Seconds until the window ends (Retry-After)."""
        return max(1.0, self.duration - self.now % self.duration)


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
        return cache_breaker.call(f"throttle {scope}", lambda: allow(request, view), fallback=True)


class SettingsScopedRateThrottle(RateFromSettings, ScopedRateThrottle, FixedWindowRateThrottle):
    """The view's `throttle_scope`, at its current rate."""


class SettingsSimpleRateThrottle(RateFromSettings, FixedWindowRateThrottle):
    """A fixed `scope`, for code outside DRF views (the admin login)."""


class SignInLocked(Exception):
    """The account has had too many failed sign-ins in its window; `wait` seconds until it ends."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


class AccountSignInThrottle(SettingsSimpleRateThrottle):
    """Failed sign-ins per account, from every address together (THROTTLE_AUTH_ACCOUNT_RATE), in fixed windows of
    the rate's period.

    The "auth" rate limits each address; guesses spread over many addresses would each stay under it. Each sign-in
    takes a slot of its account's window before its password is checked (one atomic increment in the cache, so
    guesses sent at the same moment never pass the limit together) and gives it back when it succeeds: only
    failures count, and the learner's own sign-ins never lock them out. While the window is full every sign-in of
    the account is refused, with the right password too (a guess must not learn it was right); its tokens and
    sessions keep working. `username` is the name as the sign-in hands it to `authenticate()` (cleaned by its
    form or serializer); the key folds its case and Unicode form. Like the other throttles, it lets sign-ins
    through while the cache is unreachable."""

    scope = "auth_account"

    def __init__(self, username: str) -> None:
        super().__init__()
        self.now = self.timer()
        window = int(self.now // self.duration) if self.duration else 0
        folded = unicodedata.normalize("NFKC", username.strip()).casefold()
        digest = hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        self.key = f"throttle_{self.scope}_{digest}_{window}"
        self._taken = False

    def take(self) -> None:
        """Take a slot for one sign-in; SignInLocked when the window has none left (the slot is not kept)."""
        if self.rate is None:
            return
        taken = cache_breaker.call(f"throttle {self.scope}", self._increment, fallback=None)
        if taken is None:
            return  # the cache is unreachable: let it through
        if taken > self.num_requests:
            cache_breaker.call(f"throttle {self.scope}", self._decrement, fallback=None)
            raise SignInLocked(self.wait())
        self._taken = True

    def give_back(self) -> None:
        """The sign-in succeeded: its slot is not a failure."""
        if self._taken:
            cache_breaker.call(f"throttle {self.scope}", self._decrement, fallback=None)
            self._taken = False

    def _increment(self) -> int:
        return _window_increment(self.key, self.duration + 1)

    def _decrement(self) -> None:
        with suppress(ValueError):  # (the key expired meanwhile: its window is over, nothing is left to give back)
            cache.decr(self.key)


@contextmanager
def account_sign_in(username: str) -> Iterator[None]:
    """Around the check of one sign-in's credentials: SignInLocked before it when the account is locked; credentials
    refused (the check raises a validation error: DRF's serializer, Django's login form) keep their slot. A success
    gives it back, and so does a check that could not run (the database away: a 503 the app retries after
    Retry-After, which counted as a guess and locked the learner out for the rest of the window)."""
    throttle = AccountSignInThrottle(username)
    throttle.take()
    refused = False
    try:
        yield
    except (DjangoValidationError, DRFValidationError):
        refused = True
        raise
    finally:
        if not refused:
            throttle.give_back()
