"""Fixtures shared by every test: users, authenticated API clients, isolated media storage."""

import contextlib
import socket
import threading

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from study.tests.factories import UserFactory


def pytest_collection_modifyitems(config, items):
    """`make test` runs the suite on PostgreSQL, then again on SQLite (the demo's database): there, tests marked
    `postgresql` are skipped."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason=f"needs PostgreSQL (this run is on {connection.vendor})")
    for item in items:
        if item.get_closest_marker("postgresql"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _celery_join_flag_cleared():
    """Start every test with Celery's process-wide "joining would block" flag cleared.

    Eager tasks set and restore this global around each run; eager tasks run from several
    threads at once (race tests, the live server) can restore it in the wrong order and leave
    it set, and then an unrelated test's `EagerResult.get()` refuses to run.
    """
    from celery.result import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many users; a cheap hasher keeps them fast (production keeps PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _cache_asked_again():
    """A test that made the cache unreachable leaves its users skipping it for a while (cache_breaker): the next
    test starts with them asking it again."""
    from studyserver import caches
    from studyserver.celery import broker_breaker

    caches.cache_breaker.down_until = 0.0
    broker_breaker.down_until = 0.0  # (the same for a broker a test made fail)


@pytest.fixture(autouse=True)
def _no_account_sign_in_throttle(settings):
    """The failed sign-ins of a username are counted in the shared cache across tests, xdist workers and runs; the
    factories' usernames repeat in each. Tests of that throttle turn it on for usernames of their own."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth_account": None},
    }


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Every test writes uploads into its own folder, so storage can be listed afterwards."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers: a hung broker, cache or database server."""
    accepted: list[socket.socket] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)

        def accept() -> None:
            with contextlib.suppress(OSError):  # the listening socket closed: the test is over
                while True:
                    accepted.append(server.accept()[0])

        threading.Thread(target=accept, daemon=True).start()
        yield server.getsockname()[1]
    for connection in accepted:
        connection.close()


@pytest.fixture
def redis_worker(settings):
    """A real Celery worker on this xdist process's own Redis database; eager mode comes back after."""
    from studyserver.testing import running_worker, worker_broker_url

    settings.CELERY_TASK_ALWAYS_EAGER = False
    with running_worker(worker_broker_url()) as app:
        yield app


def use_python_twins(monkeypatch) -> None:
    """Make the hot paths take their Python/ORM twins, as on a database other than PostgreSQL."""
    monkeypatch.setattr("studyserver.sqljson.fast_paths_supported", lambda: False)


@pytest.fixture(params=["postgresql", "python"])
def hot_path(request, monkeypatch):
    """Run a test once on the PostgreSQL fast paths (JSON bodies, prepared statements) and once on the twins."""
    if request.param == "postgresql":
        from django.db import connection

        if connection.vendor != "postgresql":
            pytest.skip(f"the fast paths need PostgreSQL (this run is on {connection.vendor})")
    if request.param == "python":
        use_python_twins(monkeypatch)
    return request.param


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


def _client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api_client(user) -> APIClient:
    """An API client authenticated (token) as `user`."""
    return _client_for(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    """An API client authenticated (token) as `other_user`."""
    return _client_for(other_user)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for():
    """Build an authenticated API client for any user."""
    return _client_for
