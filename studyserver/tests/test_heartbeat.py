"""Worker heartbeats: beat sends one to each queue, the worker that takes it notes the time in the shared cache, and
/healthz says whether every queue has a worker (`workers`) and how long ago each was seen."""

import time

import pytest
from django.conf import settings
from django.core.cache import cache

from studyserver.heartbeat import KEY, LATE_SECONDS, heartbeat_queues, worker_heartbeat
from studyserver.testing import broker_key_prefix, celery_conf, wait_for, worker_broker_url, worker_process

pytestmark = pytest.mark.django_db

DEFAULT, SLOW = settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_SLOW_QUEUE
HEARTBEATS = {name: entry for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
              if entry["task"] == worker_heartbeat.name}


@pytest.fixture
def shared_cache(settings):
    """The cache on this xdist process's own Redis database (where its test workers' broker is), emptied of
    heartbeats; a queue is handed to it by the running worker below, or noted by hand."""
    url = worker_broker_url()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                                   "OPTIONS": settings.REDIS_TIMEOUTS}}
    cache.delete_many([KEY.format(queue=queue) for queue in heartbeat_queues()])
    with celery_conf(task_always_eager=False):
        yield url
    cache.delete_many([KEY.format(queue=queue) for queue in heartbeat_queues()])


def healthz(client) -> dict:
    response = client.get("/healthz")
    assert response.status_code == 200  # the workers never make the web process unhealthy
    return response.json()


def note(queue: str, seconds_ago: float) -> None:
    cache.set(KEY.format(queue=queue), time.time() - seconds_ago)


def test_beat_sends_a_heartbeat_to_each_queue():
    assert sorted((entry["args"], entry["options"]["queue"]) for entry in HEARTBEATS.values()) == sorted(
        [((DEFAULT,), DEFAULT), ((SLOW,), SLOW)])
    assert all(entry["options"]["expires"] <= entry["schedule"] for entry in HEARTBEATS.values())  # none pile up


def test_no_heartbeat_yet_is_late(client, shared_cache):
    body = healthz(client)
    assert body["workers"] == "late"
    assert body["workers_seen_seconds_ago"] == {DEFAULT: None, SLOW: None}


def test_every_queue_seen_lately_is_ok(client, shared_cache):
    note(DEFAULT, 3)
    note(SLOW, LATE_SECONDS - 10)
    body = healthz(client)
    assert body["workers"] == "ok"
    assert body["workers_seen_seconds_ago"] == {DEFAULT: 3, SLOW: LATE_SECONDS - 10}


@pytest.mark.parametrize("late", [DEFAULT, SLOW])
def test_one_queue_not_seen_for_too_long_is_late(client, shared_cache, late):
    for queue in heartbeat_queues():
        note(queue, LATE_SECONDS + 5 if queue == late else 1)
    body = healthz(client)
    assert body["workers"] == "late"
    assert body["workers_seen_seconds_ago"][late] == LATE_SECONDS + 5


def test_eager_tasks_need_no_worker(client, shared_cache):
    with celery_conf(task_always_eager=True):
        body = healthz(client)
    assert body["workers"] == "eager" and "workers_seen_seconds_ago" not in body


def test_a_cache_of_its_own_cannot_tell(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with celery_conf(task_always_eager=False, broker_url="redis://127.0.0.1:1/0"):
        body = healthz(client)
    assert body["workers"] == "unknown" and "workers_seen_seconds_ago" not in body


def test_a_heartbeat_while_the_cache_is_down_is_only_logged(settings, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0", "OPTIONS": settings.REDIS_TIMEOUTS}}
    worker_heartbeat(DEFAULT)  # does not raise: a failed heartbeat task every minute would say less than healthz
    assert "worker heartbeat of celery not noted" in caplog.text


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_takes_the_heartbeats_beat_sends(client, shared_cache):
    """A real worker process (both queues, the one-worker setup) takes the heartbeats as beat's schedule sends
    them; /healthz goes from late to ok."""
    from studyserver.celery import app
    from studyserver.testing import sending_to

    assert healthz(client)["workers"] == "late"
    with broker_key_prefix(shared_cache, "heartbeat") as prefix:
        with sending_to(shared_cache, prefix):
            for entry in HEARTBEATS.values():
                app.send_task(entry["task"], args=entry["args"], **entry["options"])
        with worker_process(shared_cache, prefix, REDIS_URL=shared_cache):
            assert wait_for(lambda: healthz(client)["workers"] == "ok", timeout=30)
    seen = healthz(client)["workers_seen_seconds_ago"]
    assert set(seen) == {DEFAULT, SLOW} and all(0 <= age < 30 for age in seen.values())
