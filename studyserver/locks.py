"""Transaction-scoped advisory locks: serialise work that has no row to lock (yet)."""

import hashlib

from django.db import connection


def advisory_xact_lock(key: int | str) -> None:
    """Hold the advisory lock `key` until the current transaction ends; a text key is hashed to 64 bits.

    PostgreSQL only: SQLite (the demo) lets one writer in at a time anyway (others wait on the database lock).
    """
    if connection.vendor != "postgresql":
        return
    if isinstance(key, str):
        key = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
