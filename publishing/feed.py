"""The feed item as the viewer receives it, rendered once when its Published row is written.

A feed page is read far more often than a row is written (every viewer pulls every row, pages are pulled
again after a reset), so the finished JSON of each item is kept with the row (`Published.item`) and a page
is these texts joined. Times are UTC ("Z"), like the times inside the payloads.

Rows are re-rendered only when they are written again (a backfill skips unchanged payloads), so a change
of this rendering comes with a data migration that renders the existing rows (as publishing/0003 did).
"""

from datetime import UTC, datetime

from rest_framework.renderers import JSONRenderer

_render = JSONRenderer().render


def feed_item_json(*, seq: int, pub_id: str, kind: str, updated_at: datetime, payload: dict | None) -> str:
    """FeedItemSerializer's output rendered by DRF's JSON renderer (the tests pin the two equal)."""
    stamp = updated_at.astimezone(UTC).isoformat()
    item = {
        "seq": seq, "pub_id": pub_id, "kind": str(kind), "deleted": payload is None,
        "updated_at": stamp.removesuffix("+00:00") + "Z", "payload": payload,
    }
    return _render(item).decode()


def feed_page_json(items: list[str], *, next_after: int, has_more: bool) -> str:
    """The page body {items, next_after, has_more} around already rendered items."""
    return f'{{"items":[{",".join(items)}],"next_after":{next_after},"has_more":{"true" if has_more else "false"}}}'
