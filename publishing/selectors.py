"""Reads of the publishing app: feed pages, pub_id resolution and outbox health."""

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, F, Func, Min, TextField
from django.utils import timezone

from studyserver.sqljson import fetch_json, iso_datetime_sql, json_array_sql

from .models import Published, PublishKind, PublishOutbox

FEED_FIELDS = ("seq", "pub_id", "kind", "deleted", "updated_at", "payload")


def feed_page(*, after: int, limit: int, kinds: Iterable[str] | None = None) -> tuple[list[tuple], bool]:
    """Published rows with seq > after in ascending seq as FEED_FIELDS tuples, and whether more follow; one query."""
    queryset = Published.objects.filter(seq__gt=after)
    kinds = list(kinds or [])
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    columns = [_updated_at_text() if name == "updated_at" else name for name in FEED_FIELDS]
    rows = [
        (seq, pub_id, kind, deleted, _as_datetime(updated_at), payload)
        for seq, pub_id, kind, deleted, updated_at, payload in queryset.order_by("seq").values_list(*columns)[
            : limit + 1
        ]
    ]
    return rows[:limit], len(rows) > limit


@functools.lru_cache
def _feed_page_json_sql(*, with_kinds: bool, zone: str) -> str:
    """The statement for one filter shape and time zone (`zone` is the cache key of iso_datetime_sql's)."""
    kinds = " AND kind = ANY(%(kinds)s)" if with_kinds else ""
    items = json_array_sql(
        "SELECT seq, pub_id, kind, deleted, updated_at, payload FROM publishing_published"
        f" WHERE seq > %(after)s{kinds} ORDER BY seq LIMIT %(limit)s",
        fields=f"o.seq, o.pub_id, o.kind, o.deleted, {iso_datetime_sql('o.updated_at')} AS updated_at, o.payload",
        order_by="o.seq",
        also="max(o.seq) AS last_seq",
    )
    more = f"SELECT 1 FROM publishing_published WHERE seq > %(after)s{kinds} ORDER BY seq LIMIT %(limit)s + 1"
    return f"""
        SELECT '{{"items":' || items.body || ',"next_after":' || coalesce(items.last_seq, %(after)s)
            || ',"has_more":' || ((SELECT count(*) FROM ({more}) m) > %(limit)s)::text || '}}'
        FROM ({items}) items
    """


def feed_page_json(*, after: int, limit: int, kinds: Iterable[str] | None = None) -> str:
    """The feed page body ({items, next_after, has_more}) as JSON text built by PostgreSQL in one statement.

    Items are feed_page()'s rows rendered like FeedItemSerializer; payloads keep jsonb's own spacing.
    """
    kinds = list(kinds or [])
    sql = _feed_page_json_sql(with_kinds=bool(kinds), zone=timezone.get_current_timezone_name())
    return fetch_json(sql, {"after": after, "limit": limit, "kinds": kinds})


# On PostgreSQL updated_at is read as UTC ISO text and parsed by fromisoformat (C): Django's Python timestamptz
# loader costs about ten times more per row, and a feed page has up to 2,000 rows. to_char fixes the format
# whatever the server's DateStyle.
_UTC_ISO = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"


def _updated_at_text() -> Func | F:
    if connection.vendor == "postgresql":
        return Func(F("updated_at"), template=_UTC_ISO, output_field=TextField())
    return F("updated_at")


def _as_datetime(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if isinstance(value, str) else value


def live_source_ids(*, kind: str, pub_ids: Iterable[str]) -> dict[str, int]:
    """pub_id → source_id for the live (not tombstoned) published rows of one kind."""
    rows = Published.objects.filter(kind=PublishKind(kind), pub_id__in=list(pub_ids), deleted=False)
    return dict(rows.values_list("pub_id", "source_id"))


def pub_ids_for(*, kind: str, source_ids: Iterable[int]) -> dict[int, str]:
    """source_id → pub_id of one kind (tombstones included)."""
    rows = Published.objects.filter(kind=PublishKind(kind), source_id__in=list(source_ids))
    return dict(rows.values_list("source_id", "pub_id"))


def outbox_status() -> dict:
    """Undrained outbox rows and the age of the oldest one (None when empty)."""
    figures = PublishOutbox.objects.aggregate(count=Count("id"), oldest=Min("created_at"))
    oldest_age: timedelta | None = timezone.now() - figures["oldest"] if figures["oldest"] else None
    return {"count": figures["count"], "oldest_age": oldest_age}
