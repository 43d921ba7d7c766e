"""One drain kick while one waits in the queue: later commits skip theirs until that drain starts."""

import os
import time

import pytest
from django.core.cache import cache

from publishing import services
from publishing.models import Published
from publishing.tasks import publish_drain
from study.services.topics import topic_create
from studyserver.celery import broker_breaker
from studyserver.testing import celery_conf

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queued_kicks(settings, monkeypatch):
    """Real (not eager) mode with the shared Redis cache; kicks are recorded instead of sent."""
    settings.STUDY_PUBLISH_ENABLED = True
    monkeypatch.setattr(services, "KICK_PENDING_TIMEOUT", 120)  # the flag must outlive a slow machine's test
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/1"}}
    sent: list[int] = []
    monkeypatch.setattr(publish_drain, "apply_async", lambda *args, **kwargs: sent.append(1))
    with celery_conf(task_always_eager=False):
        services.kick_pending_clear()
        yield sent
        services.kick_pending_clear()


def test_commits_while_a_kick_waits_send_none_and_its_drain_publishes_them_all(user, queued_kicks):
    first = topic_create(user=user, name="가스기사")
    second = topic_create(user=user, name="산업안전기사")
    assert len(queued_kicks) == 1  # the second commit found a kick waiting

    publish_drain.run()  # the worker runs the queued kick: it clears the flag, then drains
    assert set(Published.objects.values_list("source_id", flat=True)) == {first.id, second.id}

    topic_create(user=user, name="JLPT N3")
    assert len(queued_kicks) == 2  # the drain started, so the next commit kicks again


def test_a_failed_send_leaves_no_flag_behind(user, queued_kicks, monkeypatch):
    def broker_down(*args, **kwargs):
        queued_kicks.append(1)
        raise ConnectionError("broker down")

    monkeypatch.setattr(publish_drain, "apply_async", broker_down)
    topic_create(user=user, name="가스기사")
    assert cache.get(services._kick_pending_key()) is None  # the next commit kicks again: no flag says one waits
    topic_create(user=user, name="산업안전기사")
    # ... once the broker is tried again: for a while after a failure this process sends nothing (broker_breaker),
    # as a broker that hangs cost every commit's request its timeout; the sweep drains what waits
    assert len(queued_kicks) == 1
    assert cache.get(services._kick_pending_key()) is None
    broker_breaker.down_until = 0.0  # the while is over
    topic_create(user=user, name="위험물기능사")
    assert len(queued_kicks) == 2


def test_eager_mode_always_runs_the_drain(user, settings):
    settings.STUDY_PUBLISH_ENABLED = True
    topic_create(user=user, name="가스기사")
    topic_create(user=user, name="산업안전기사")
    assert Published.objects.filter(kind="study_topic").count() == 2


def test_while_the_cache_is_unreachable_each_commit_kicks_and_only_the_first_asks_it(user, queued_kicks, settings,
                                                                                    caplog):
    """The kick flag asked the cache on every commit that requested a publish: a Redis that hangs cost each of them
    its timeout. Now the first failure makes this process do without it for a while (cache_breaker), and a commit
    without the flag kicks the drain, which is always correct."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
                                   "OPTIONS": settings.REDIS_TIMEOUTS}}

    for name in ("가스기사", "산업안전기사", "JLPT N3"):
        topic_create(user=user, name=name)

    assert len(queued_kicks) == 3
    assert Published.objects.count() == 0  # kicked, not drained here: nothing was sent to a worker
    unreachable = [r.getMessage() for r in caplog.records if "the cache is unreachable" in r.getMessage()]
    assert len(unreachable) == 1 and unreachable[0].startswith("publish kick flag not applied")
    assert not [r for r in caplog.records if "publish kick flag: cache." in r.getMessage()]


def test_a_drain_clears_the_flag_even_while_the_cache_breaker_skips_the_cache(user, queued_kicks):
    """A worker process whose cache call had failed lately skipped the delete too: the flag stayed set after its
    drain had started, and the next commits, finding it, sent no kick that drain no longer covered."""
    from studyserver.caches import cache_breaker

    topic_create(user=user, name="가스기사")
    assert cache.get(services._kick_pending_key()) == 1
    cache_breaker.down_until = time.monotonic() + 60  # this process found the cache down a moment ago

    publish_drain.run()

    assert cache.get(services._kick_pending_key()) is None


def test_a_commit_made_while_a_drain_runs_kicks_again(user, queued_kicks, monkeypatch):
    """The drain clears the flag before it claims: a commit landing after its claim, which that drain no longer
    sees, must find no flag and send its own kick (else its rows wait for the sweep)."""
    topic_create(user=user, name="가스기사")
    assert len(queued_kicks) == 1
    drain = services.publish_drain

    def drain_then_another_commit(**kwargs) -> int:
        drained = drain(**kwargs)
        topic_create(user=user, name="산업안전기사")  # committed while the task is still running
        return drained

    monkeypatch.setattr(services, "publish_drain", drain_then_another_commit)
    publish_drain.run()

    assert len(queued_kicks) == 2
