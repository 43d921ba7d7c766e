"""Hot paths on PostgreSQL: list bodies serialised by the database, fixed statements run prepared.

Building hundreds of row dicts in Python, encoding them, and compiling querysets cost several times the
database work itself. On PostgreSQL a hot list endpoint (due list, review groups, sessions list)
asks instead for the finished body in one statement and passes the text through, and card rating runs
fixed statements; both kinds are prepared on the server after a few runs (DATABASE_PREPARE_THRESHOLD).

Each fast path has a twin, the plain Python/ORM code, which other databases (the SQLite demo) use and
which the tests run on PostgreSQL too and compare with the fast path (the `hot_path` fixture), so the
two cannot drift apart.
"""

import psycopg
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone

# json_agg separates composite elements with ", \n "; a raw newline cannot occur inside a JSON string
# (PostgreSQL escapes it) nor in jsonb's text form, so removing the separator's whitespace is safe.
_COMPACT = "replace({}::text, E', \\n ', ',')"


def fast_paths_supported() -> bool:
    """Whether the hot paths may take their PostgreSQL fast path; elsewhere (SQLite) they take their twin."""
    return connection.vendor == "postgresql"


def json_negotiated(request) -> bool:
    """Did the client negotiate JSON? The browsable API (text/html) keeps DRF's renderers."""
    renderer = getattr(request, "accepted_renderer", None)
    return renderer is not None and renderer.format == "json"


def json_body_wanted(request) -> bool:
    """Answer this list request with a body built by PostgreSQL? Only there, and only when the client
    negotiated JSON; otherwise the Python twin answers."""
    return fast_paths_supported() and json_negotiated(request)


def json_array_sql(rows: str, *, fields: str, order_by: str, also: str = "") -> str:
    """SQL for one JSON array: an object per row of `rows` (aliased `o`), keys and order from `fields`.

    `fields` is a select list over `o` (`o.id, o.title AS name, …`); `order_by` sorts over `o`'s columns, so
    sort keys need not be part of the body. `also` adds aggregates over `o` as further columns.
    """
    array = f"coalesce(json_agg(b ORDER BY {order_by}), '[]')"
    also = f", {also}" if also else ""
    return f"SELECT {_COMPACT.format(array)} AS body{also} FROM ({rows}) o CROSS JOIN LATERAL (SELECT {fields}) b"


def json_list_sql(rows: str, *, fields: str, order_by: str) -> str:
    """A nested JSON array (a json value) for a select list: as json_array_sql() with `rows` aliased `n`."""
    array = f"coalesce(json_agg(nb ORDER BY {order_by}), '[]')"
    return f"(SELECT {array} FROM ({rows}) n CROSS JOIN LATERAL (SELECT {fields}) nb)"


def iso_datetime_sql(column: str) -> str:
    """SQL text of a timestamptz as DRF's DateTimeField renders it: ISO 8601 in the current time zone.

    Like Python's isoformat(): microseconds only when non-zero, the offset as ±HH:MM, "+00:00" as "Z".
    The zone is a literal (a settings value, not user input), so statements can be built before binding.
    """
    zone = "'" + timezone.get_current_timezone_name().replace("'", "''") + "'"
    local, utc = f"({column} AT TIME ZONE {zone})", f"({column} AT TIME ZONE 'UTC')"
    # Offsets with seconds (local mean time before ~1910 in many zones) keep them, as isoformat() does.
    seconds = f"CASE WHEN date_part('second', {local} - {utc}) = 0 THEN '' ELSE ':SS' END"
    return (
        f"replace(to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '')"
        f" || CASE WHEN {local} = {utc} THEN 'Z'"
        f" WHEN {local} > {utc} THEN to_char({local} - {utc}, '\"+\"HH24:MI' || {seconds})"
        f" ELSE to_char({utc} - {local}, '\"-\"HH24:MI' || {seconds}) END"
    )


def fetch_row(sql: str, params: dict | list) -> tuple | None:
    """Run a statement that answers at most one row (JSON texts, figures, ids); None when it has none.

    The cursor binds parameters on the server, so psycopg prepares the statement once it has run a few
    times on a connection (the `prepare_threshold` option): planning these statements costs about as
    much as running them. It is wrapped like Django's own cursors, so query logging and counting see it.
    """
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    with connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_json(sql: str, params: dict | list) -> str:
    """Run a statement that answers one JSON text value."""
    return fetch_row(sql, params)[0]


class JsonTextResponse(HttpResponse):
    """A 200 response whose body is already JSON text (from fetch_json)."""

    def __init__(self, text: str) -> None:
        super().__init__(text.encode(), content_type="application/json")
