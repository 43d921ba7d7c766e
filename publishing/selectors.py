"""Reads of the publishing app: feed pages, pub_id resolution and outbox health."""

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, Max, Min
from django.utils import timezone

from .models import Published, PublishKind, PublishOutbox


def feed_page_items(*, after: int, limit: int, kinds: Iterable[str] | None = None) -> tuple[list[str], int, bool]:
    """The rendered items (Published.item) with seq > after in ascending seq, the last seq (`after` when there
    are none) and whether more follow; one query."""
    queryset = Published.objects.filter(seq__gt=after)
    kinds = list(kinds or [])
    if kinds:
        queryset = queryset.filter(kind__in=kinds)
    rows = list(queryset.order_by("seq").values_list("seq", "item")[: limit + 1])
    page = rows[:limit]
    return [item for _, item in page], page[-1][0] if page else after, len(rows) > limit


def feed_top_seq() -> int:
    """The highest seq of the feed (0 when empty). It never goes down while the database lives: rows are never
    deleted and a row moves only up, so a reader's `after` above it was handed out by another database (a restored
    backup, a reset, another server)."""
    return Published.objects.aggregate(top=Max("seq"))["top"] or 0


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
