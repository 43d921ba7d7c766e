"""studyserver.caches.cache_breaker: after a cache failure its users do without the cache for
CACHE_RETRY_SECONDS, then ask it again."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from studyserver import breakers
from studyserver.caches import CACHE_RETRY_SECONDS, cache_breaker


@pytest.fixture
def clock(monkeypatch):
    """The breaker's monotonic clock, moved by the test (`clock.now += …`)."""

    class Clock:
        now = 1000.0

    monkeypatch.setattr(breakers.time, "monotonic", lambda: Clock.now)
    return Clock


def calls_to(error: BaseException | None):
    """A cache call that records itself and fails with `error` (or answers "hit")."""
    made: list[int] = []

    def call() -> str:
        made.append(1)
        if error is not None:
            raise error
        return "hit"

    return call, made


@pytest.mark.parametrize(
    "error",
    [RedisConnectionError("refused"), TimeoutError("timed out"), ConnectionResetError("reset")],
    ids=["redis", "socket-timeout", "socket-reset"],
)
def test_a_failure_answers_the_fallback_and_skips_the_cache_until_the_retry_time(clock, error, caplog):
    failing, made = calls_to(error)
    assert cache_breaker.call("throttle test", failing, fallback="through") == "through"
    assert made == [1] and "throttle test not applied: the cache is unreachable" in caplog.text

    working, asked = calls_to(None)
    clock.now += CACHE_RETRY_SECONDS - 0.5
    assert cache_breaker.call("throttle test", working, fallback="through") == "through"
    assert asked == []  # not asked while it is known to be down
    clock.now += 0.5
    assert cache_breaker.call("throttle test", working, fallback="through") == "hit"  # asked again
    assert asked == [1]


def test_an_error_that_is_not_the_caches_is_raised_and_leaves_the_cache_in_use(clock):
    failing, _ = calls_to(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        cache_breaker.call("throttle test", failing, fallback="through")
    working, asked = calls_to(None)
    assert cache_breaker.call("throttle test", working, fallback="through") == "hit"
    assert asked == [1]
