"""Throttles: DRF's, with their rate read from settings at request time (so `THROTTLE_*_RATE` overrides apply); the
failed sign-ins of an account (AccountSignInThrottle). While the cache is unreachable they let requests through
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


class SettingsScopedRateThrottle(RateFromSettings, ScopedRateThrottle):
    """The view's `throttle_scope`, at its current rate."""


class SettingsSimpleRateThrottle(RateFromSettings, SimpleRateThrottle):
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

    def wait(self) -> float:
        """Seconds until the account's window ends (Retry-After)."""
        return max(1.0, self.duration - self.now % self.duration)

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
        cache.add(self.key, 0, timeout=self.duration + 1)
        try:
            return cache.incr(self.key)
        except ValueError:  # (the window's key expired between the two calls)
            cache.add(self.key, 1, timeout=self.duration + 1)
            return 1

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
