"""Advisory locks: a session-level lock excludes other connections for its block and never outlives it."""

import psycopg
import pytest
from django.db import DataError, connection, transaction

from studyserver.locks import advisory_lock_key, advisory_session_lock, advisory_xact_lock
from studyserver.testing import advisory_lock_holders, wait_for, worker_database_url

pytestmark = pytest.mark.postgresql  # advisory locks are PostgreSQL's (a no-op on SQLite)


def _other_connection() -> psycopg.Connection:
    return psycopg.connect(worker_database_url(), autocommit=True)


@pytest.mark.django_db(transaction=True)
def test_a_session_lock_excludes_other_connections_until_its_block_ends():
    key = advisory_lock_key("test:exclusive")
    with _other_connection() as other:
        with advisory_session_lock("test:exclusive") as ours:
            assert ours
            assert advisory_lock_holders(key) == [connection.connection.info.backend_pid]
            assert other.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0] is False
        assert advisory_lock_holders(key) == []

        other.execute("SELECT pg_advisory_lock(%s)", [key])
        with advisory_session_lock("test:exclusive") as ours:
            assert not ours  # held elsewhere: not waited for
        assert advisory_lock_holders(key) == [other.info.backend_pid]  # and not released by the loser


@pytest.mark.django_db(transaction=True)
def test_a_session_lock_that_cannot_be_released_closes_its_connection():
    """Taken inside a transaction that a failed statement then aborted, the lock cannot be released (every
    statement fails until the rollback, which keeps session locks): the connection is closed, ending the lock,
    instead of going back to the connection pool / CONN_MAX_AGE with it."""
    with transaction.atomic():
        with advisory_session_lock("test:aborted") as ours:
            assert ours
            pid = connection.connection.info.backend_pid
            with pytest.raises(DataError), connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
    assert wait_for(lambda: advisory_lock_holders("test:aborted") == [], timeout=10)
    assert connection.connection.info.backend_pid != pid  # a new connection


@pytest.mark.django_db(transaction=True)
def test_every_text_key_is_a_lock_postgresql_takes():
    """A text is hashed to a signed 64-bit key: read unsigned, about half of all texts fall above PostgreSQL's
    bigint ("bigint out of range") and their work could never be locked."""
    keys = [f"test:key-{n}" for n in range(16)]
    assert all(-(2**63) <= advisory_lock_key(key) < 2**63 for key in keys)
    assert advisory_lock_key(42) == 42  # an int is its own key
    for key in keys:
        with advisory_session_lock(key) as ours:
            assert ours
        with transaction.atomic():
            advisory_xact_lock(key)
            assert advisory_lock_holders(key) == [connection.connection.info.backend_pid]
        assert advisory_lock_holders(key) == []
