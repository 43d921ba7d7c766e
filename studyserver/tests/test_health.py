"""GET /healthz."""

import os

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

REDIS = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/1"


def redis_cache(location: str) -> dict:
    """A cache configured as settings.py configures the REDIS_URL one."""
    from django.conf import settings

    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location,
                        "OPTIONS": settings.REDIS_TIMEOUTS}}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_healthz_reports_database_eager_broker_and_cache(client, settings, path):
    settings.CACHES = redis_cache(REDIS)
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager", "cache": "ok", "workers": "eager"}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert client.get(path).json()["cache"] == "local"  # no REDIS_URL: throttles count per process


@pytest.mark.django_db
def test_healthz_reports_a_down_broker(client):
    from studyserver.testing import celery_conf

    with celery_conf(broker_url="redis://127.0.0.1:1/0", task_always_eager=False):  # nothing listens on port 1
        body = client.get("/healthz").json()
    assert body["broker"] == "down"
    assert body["database"] == "ok"


@pytest.mark.django_db
def test_healthz_answers_when_the_broker_and_the_cache_never_answer(client, settings, silent_port):
    """Both used to wait for good (no socket timeouts): the probe, and every request that sends a task."""
    from studyserver.testing import celery_conf

    settings.CACHES = redis_cache(f"redis://127.0.0.1:{silent_port}/0")
    with celery_conf(broker_url=f"redis://127.0.0.1:{silent_port}/0", task_always_eager=False):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "down", "cache": "down",
                               "workers": "unknown"}


@pytest.mark.django_db
def test_a_cache_that_is_down_lets_sign_ins_through_and_says_so(settings, user, caplog):
    """The throttle counters live in Redis: while it is down, a learner can still get a token (a 500 before)."""
    from rest_framework.test import APIClient

    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    response = APIClient().post("/api/auth/token", {"username": user.username, "password": "pw-for-tests-1"})
    assert response.status_code == 200, response.content
    assert "throttle auth not applied: the cache is unreachable (ConnectionError" in caplog.text


@pytest.mark.django_db
def test_once_the_cache_is_found_down_the_throttles_stop_asking_it_for_a_while(settings, user, caplog):
    """A Redis that hangs costs its timeout per cache call, four calls for a sign-in: the throttles of a process that
    found it down let requests through without asking it, and ask again after CACHE_RETRY_SECONDS."""
    from rest_framework.test import APIClient

    from studyserver import caches

    settings.CACHES = redis_cache("redis://127.0.0.1:1/0")  # nothing listens on port 1
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth_account": "50/hour"},
    }

    def sign_ins(count: int) -> list[int]:
        return [APIClient().post("/api/auth/token", {"username": user.username, "password": password}).status_code
                for password in ["pw-for-tests-1", "wrong"] * (count // 2)]

    def cache_errors() -> int:
        return sum("the cache is unreachable" in record.getMessage() for record in caplog.records)

    assert sign_ins(4) == [200, 400, 200, 400]
    assert cache_errors() == 1  # the address's throttle found it down; nothing asked it again
    caches.cache_breaker.down_until = 0.0  # CACHE_RETRY_SECONDS later
    assert sign_ins(2) == [200, 400]
    assert cache_errors() == 2


UNKNOWN_PATHS = [
    "/api/no-such-thing", "/api/study-cards/99999999999999999999", "/api/study-topics/1/nothing",
    "/api/documents/0.5", "/api/study-cards/null,null/view", "/publish/nothing", "/ingest/study/nothing",
    "/api", "/publish", "/ingest",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("with_token", [True, False])
def test_unknown_paths_answer_json_404(settings, user, path, debug, with_token):
    """JSON for every method, with DEBUG on too (make demo, where Django answers an unmatched path with its HTML
    page instead of handler404), and never the CSRF check's HTML 403 first: a client that checks CSRF, as
    browsers do, and a token client, which sends no CSRF cookie."""
    settings.DEBUG = debug
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"} if with_token else {}
    client = Client(enforce_csrf_checks=True, **headers)
    for method in ("get", "post", "put", "patch", "delete"):
        response = getattr(client, method)(path)
        assert response.status_code == 404, (method, response.status_code, response.content[:200])
        assert response["Content-Type"] == "application/json"
        assert response.json()["error_code"] == "not_found"


@pytest.mark.parametrize("path", ["/no-such-page", "/apis", "/publishing/feed"])
def test_paths_outside_the_json_prefixes_keep_djangos_404(client, settings, path):
    settings.DEBUG = True
    response = client.get(path)
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_degraded_while_the_database_fails(client):
    """A load balancer or an orchestrator takes the instance out on a non-200: a database that does not answer
    must not report healthy."""
    from studyserver.testing import failing_statement

    with failing_statement("SELECT 1", errcode="08006"):  # connection failure
        response = client.get("/healthz")
    assert response.status_code == 503
    assert (response.json()["status"], response.json()["database"]) == ("degraded", "down")
    assert client.get("/healthz").json()["status"] == "ok"  # and healthy again once it answers


@pytest.mark.django_db
def test_a_bug_under_a_request_answers_json_500(api_client, settings, monkeypatch):
    """handler500: clients switch on `error_code` there too, not on Django's HTML page."""
    from study.services import topics

    def broken(**kwargs):
        raise RuntimeError("a bug")

    settings.DEBUG = False
    api_client.raise_request_exception = False
    monkeypatch.setattr(topics, "topic_create", broken)
    response = api_client.post("/api/study-topics", {"name": "연소공학"}, format="json")
    assert response.status_code == 500
    assert response.json() == {"error_code": "server_error", "detail": "Internal server error."}


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "page"), [
    ("/admin", "/admin/"), ("/admin/study/memocard/review", "/admin/study/memocard/review/"),
    ("/admin/study/memocard", "/admin/study/memocard/"),
])
def test_an_admin_page_typed_without_its_slash_is_sent_to_the_page(admin_client, path, page):
    """It was a JSON 404 (the API's paths take both forms by their routes; the admin's do not)."""
    response = admin_client.get(path)
    assert (response.status_code, response["Location"]) == (301, page)
    assert admin_client.get(page).status_code == 200


@pytest.mark.django_db
def test_healthz_answers_get_and_head_only(client):
    """A probe's POST met the CSRF check's HTML 403, and OPTIONS ran the whole check."""
    enforcing = Client(enforce_csrf_checks=True)
    assert enforcing.head("/healthz").status_code == 200
    for method in ("post", "put", "delete", "options"):
        response = getattr(enforcing, method)("/healthz")
        assert (response.status_code, response["Allow"]) == (405, "GET, HEAD"), method
