"""Advisory locks: serialise work that has no row to lock (yet), or that must not hold a row lock meanwhile."""

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

logger = logging.getLogger(__name__)


def advisory_lock_key(key: int | str) -> int:
    """The 64-bit key of the advisory lock `key`: an int as it is, a text hashed (blake2b) to a signed bigint."""
    if isinstance(key, str):
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    return key


def advisory_xact_lock(key: int | str) -> None:
    """Hold the advisory lock `key` until the current transaction ends; a text key is hashed to 64 bits.

    PostgreSQL only: SQLite (the demo) lets one writer in at a time anyway (others wait on the database lock).
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [advisory_lock_key(key)])


@contextmanager
def advisory_session_lock(key: int | str) -> Iterator[bool]:
    """Try to take the session-level advisory lock `key` for the block, without waiting; yields whether it did.

    Unlike advisory_xact_lock it needs no open transaction, so slow work can run under it with none open, and
    it is held across the block's own short transactions. It is released at the end of the block, or by
    PostgreSQL when the connection ends (a killed worker), so it never has to be unstuck by hand.
    If the unlock fails the connection is closed, so that a persistent connection (CONN_MAX_AGE, a connection
    pool) cannot carry a leaked lock into later work.

    The lock belongs to the server connection: behind a PgBouncer in transaction pooling mode the unlock may
    run on another server connection and the lock leak there. Connect the code using it (the workers) to
    PostgreSQL directly or through session pooling.
    SQLite (the demo: one process, eager tasks): always yields True, there is no one to exclude.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    key = advisory_lock_key(key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    if not acquired:
        yield False
        return
    try:
        yield True
    finally:
        _advisory_unlock(key)


def _advisory_unlock(key: int) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            released = cursor.fetchone()[0]
    except Exception:  # a broken connection, an aborted transaction: the lock may still be held on it
        logger.exception("could not release advisory lock %s: closing the database connection", key)
        _close_for_real()
        return
    if not released:  # the connection that took it was closed meanwhile, and the lock with it
        logger.warning("advisory lock %s was no longer held at release", key)


def _close_for_real() -> None:
    """End the server session (and every session-level lock of it), pooled connection or not."""
    try:
        raw = connection.connection
        if raw is not None:
            raw.close()  # closed, a pooled connection is discarded by the pool instead of reused
    finally:
        try:
            connection.close()
        except Exception:
            logger.exception("closing the database connection failed")
