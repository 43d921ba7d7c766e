"""Test support: a real Celery worker on Redis inside the test process, concurrency, database faults, settings read
afresh as a start reads them."""

import base64
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from celery.app.trace import reset_worker_optimizations
from celery.contrib.testing.worker import start_worker
from celery.result import _set_task_join_will_block
from celery.signals import task_postrun
from django.conf import settings
from django.db import connection, connections, transaction

from .celery import app


def run_concurrently(*calls: Callable[[], object]) -> list:
    """Run each call in its own thread, all released at once by a barrier; results in call order.

    Each thread uses (and closes) its own database connection, as concurrent requests do.
    An exception raised in a thread is raised here.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def blocking_another_connection() -> bool:
    """Is another connection waiting for a lock that this one holds?"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is otherwise frozen per transaction
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)))"
        )
        return cursor.fetchone()[0]


def fresh_address() -> str:
    """A client address of its own (10.0.0.0/8, ~16 million of them): its throttle counters in the shared cache
    belong to this test alone, whatever other tests or xdist workers count meanwhile."""
    number = uuid.uuid4().int % (1 << 24)
    return f"10.{number >> 16}.{(number >> 8) & 0xFF}.{number & 0xFF}"


def hold_until_another_waits(timeout: float = 30.0) -> bool:
    """Inside a transaction: return once another connection waits on one of its locks (or after `timeout`), so
    a race test commits only when the other side is really waiting. Whether it did."""
    return wait_for(blocking_another_connection, timeout)


def while_holding(write: Callable[[], object], *, then: Callable[[], object], timeout: float = 30.0):
    """Run `write` in a transaction that stays open until `then` (another thread, started once `write` is done)
    waits on its locks or finishes; `then`'s result. Forces the order of a race: `then` meets `write`'s locks."""
    written, finished = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                write()
                written.set()
                wait_for(lambda: finished.is_set() or blocking_another_connection(), timeout=timeout)
        finally:
            written.set()

    def other():
        try:
            written.wait(timeout)
            return then()
        finally:
            finished.set()

    return run_concurrently(hold, other)[1]


def worker_broker_url() -> str:
    """A Redis database of its own for each pytest-xdist process (db 10 for gw0, 11 for gw1, …)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return f"redis://127.0.0.1:6379/{10 + index % 6}"


def reset_broker_connections() -> None:
    """Forget pooled connections and producers, so the next send uses the configured broker."""
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


@contextmanager
def celery_conf(**values) -> Iterator:
    """Override Celery settings for a block, then drop the overrides.

    Restoring by writing the old values back would pin them: Celery reads unchanged settings
    live from Django's settings, which tests override and pytest-django restores.
    """
    missing = object()
    saved = {key: app.conf.changes.get(key, missing) for key in values}
    app.conf.update(values)
    reset_broker_connections()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is missing:
                app.conf.changes.pop(key, None)
            else:
                app.conf.changes[key] = value
        reset_broker_connections()


@contextmanager
def running_worker(broker_url: str) -> Iterator:
    """Point the app at `broker_url` under a key prefix of this run, run a solo worker thread, restore after.

    The unique prefix keeps two runs sharing a Redis database (parallel sessions) from taking
    each other's tasks; its keys are deleted afterwards. The worker thread closes its database connection after
    each task: a worker keeps it open across tasks (CELERY_DB_REUSE_MAX), and a thread's connection outlived the
    thread, so the test database could not be dropped at the end of the run ("being accessed by other users").
    """
    task_postrun.connect(_close_worker_thread_connections, weak=False)
    try:
        with (
            broker_key_prefix(broker_url) as prefix,
            sending_to(broker_url, prefix),
            start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10),
        ):
            from publishing.services import kick_pending_clear

            kick_pending_clear()  # no "kick already queued" flag left by an earlier run
            yield app
    finally:
        task_postrun.disconnect(_close_worker_thread_connections)
        # The worker leaves process-wide state behind; later eager tests must see a plain process.
        reset_worker_optimizations(app)
        _set_task_join_will_block(False)


def _close_worker_thread_connections(sender=None, **kwargs) -> None:
    if threading.current_thread() is not threading.main_thread():  # (an eager task runs in the test's own)
        connections.close_all()


@contextmanager
def broker_key_prefix(broker_url: str, label: str = "test") -> Iterator[str]:
    """A fresh broker key prefix on `broker_url` (one install of its own); every key under it is deleted after."""
    prefix = f"{label}-{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        with redis.Redis.from_url(broker_url) as client:
            for key in client.scan_iter(match=f"{prefix}*"):
                client.delete(key)


@contextmanager
def sending_to(broker_url: str, prefix: str) -> Iterator:
    """Tasks sent in the block go to `broker_url` under `prefix` (not run eagerly), where no worker may be yet."""
    options = {**(app.conf.broker_transport_options or {}), "global_keyprefix": prefix}
    with celery_conf(broker_url=broker_url, task_always_eager=False, broker_transport_options=options):
        yield


def queued_messages(broker_url: str, prefix: str, queue: str) -> list[dict]:
    """The messages waiting in `queue` on Redis, oldest first, each as {"task", "args", "kwargs"}."""
    with redis.Redis.from_url(broker_url) as client:
        raw = client.lrange(f"{prefix}{queue}", 0, -1)
    messages = []
    for envelope in map(json.loads, reversed(raw)):  # kombu pushes on the left and pops on the right
        args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs})
    return messages


def worker_database_url() -> str:
    """The URL of the database the tests run on (the test database), for a worker process."""
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker_process(broker_url: str, prefix: str, *options: str, **env: str) -> subprocess.Popen:
    """Start a real `celery -A studyserver worker` process (solo pool) on `broker_url` under `prefix`, on the test
    database, with extra command-line `options` (e.g. "-Q", "celery") and environment. The caller stops it."""
    return subprocess.Popen(  # noqa: S603 - a fixed command; `options` come from the tests
        [sys.executable, "-m", "celery", "-A", "studyserver", "worker", "--pool", "solo", "--loglevel", "WARNING",
         "--without-mingle", "--without-gossip", "--without-heartbeat", *options],
        cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "DEBUG": "true", "DATABASE_URL": worker_database_url(), "CELERY_BROKER_URL": broker_url,
             "CELERY_BROKER_KEY_PREFIX": prefix, **env},
    )


@contextmanager
def worker_process(broker_url: str, prefix: str, *options: str, **env: str) -> Iterator[subprocess.Popen]:
    """start_worker_process() for the block, stopped (warm shutdown) after it."""
    process = start_worker_process(broker_url, prefix, *options, **env)
    try:
        yield process
    finally:
        process.terminate()  # warm shutdown: a task it holds unacknowledged goes back to its queue
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def failing(table: str, event: str = "INSERT", errcode: str = "P0001") -> Iterator[None]:
    """Every `event` on `table` raises inside the database (SQLSTATE `errcode`) until the block ends.

    A real PostgreSQL error from a trigger, no mock: the code under test meets exactly what a failing
    statement would give it (e.g. `foreign_key_violation`, `unique_violation`).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE OR REPLACE FUNCTION test_fault_raise() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
            "'simulated fault on %', TG_TABLE_NAME USING ERRCODE = TG_ARGV[0]; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER test_fault BEFORE {event} ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION test_fault_raise('{errcode}')"
        )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS test_fault ON {table}")


@contextmanager
def failing_statement(containing: str, *, after: str = "", errcode: str = "57014") -> Iterator[None]:
    """The first statement whose SQL contains `containing` (once one containing `after` has run) fails inside
    the database with SQLSTATE `errcode` (default `query_canceled`) instead of running; every other runs.

    For reads, which a trigger (`failing`) cannot fail: the database raises a real error through the real driver.
    """
    if not (len(errcode) == 5 and errcode.isalnum()):
        raise ValueError(f"not a SQLSTATE: {errcode!r}")
    armed, failed = not after, False

    def wrapper(execute, sql, params, many, context):
        nonlocal armed, failed
        if armed and not failed and containing in sql:
            failed = True
            return execute(f"DO $$ BEGIN RAISE EXCEPTION 'simulated fault' USING ERRCODE = '{errcode}'; END $$",
                           None, many, context)
        if after and after in sql:
            armed = True
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
    assert failed, f"no statement containing {containing!r} ran"


def stored_files(media_root: Path) -> list[Path]:
    """Every file below the (test's own) media root: what an upload left behind."""
    return [p for p in Path(media_root).rglob("*") if p.is_file()]


def advisory_lock_holders(key: int | str) -> list[int]:
    """The backends (pids) of this database holding the advisory lock `key` (as studyserver.locks takes it)."""
    from .locks import advisory_lock_key

    key = advisory_lock_key(key)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND classid::bigint = %s AND objid::bigint = %s"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
        )
        return [pid for (pid,) in cursor.fetchall()]


def backend_in_transaction(pid: int) -> bool:
    """Has the backend `pid` a transaction open (running or idle in it)?"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # pg_stat_activity is otherwise frozen per transaction
        cursor.execute("SELECT xact_start IS NOT NULL FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row and row[0])


@contextmanager
def counting_updates(table: str) -> Iterator[Callable[[], int]]:
    """Count the rows of `table` updated in the block, by any connection, committed or rolled back: yields the
    count so far. A real trigger bumping a sequence (which no rollback undoes), no mock."""
    name = f"test_updates_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {name}")
        cursor.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN PERFORM nextval('{name}'); RETURN NEW; END $$"
            " LANGUAGE plpgsql"
        )
        cursor.execute(f"CREATE TRIGGER {name} AFTER UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(pg_sequence_last_value(%s::regclass), 0)", [name])
            return cursor.fetchone()[0]

    try:
        yield count
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {name}()")
            cursor.execute(f"DROP SEQUENCE IF EXISTS {name}")


def sqlite_operational_error(message: str, code: int):
    """An OperationalError as Django raises it from sqlite3's error with that result code."""
    import sqlite3

    from django.db import OperationalError

    cause = sqlite3.OperationalError(message)
    cause.sqlite_errorcode = code  # as sqlite3 sets it
    error = OperationalError(message)
    error.__cause__ = cause
    return error


def postgresql_operational_error(sqlstate: str | None, message: str = ""):
    """An OperationalError as Django raises it from psycopg's error of that SQLSTATE (None: the connection itself
    failed, and the server sent no SQLSTATE)."""
    import psycopg.errors
    from django.db import OperationalError

    text = message or f"simulated {sqlstate or 'lost connection'}"
    cause = psycopg.errors.lookup(sqlstate)(text) if sqlstate else psycopg.OperationalError(text)
    error = OperationalError(text)
    error.__cause__ = cause
    return error


def load_settings(monkeypatch, **env: str):
    """Execute studyserver/settings.py afresh under `env` (on top of this process's), as a start would."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("studyserver._settings_under_test",
                                                  settings.BASE_DIR / "studyserver" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
