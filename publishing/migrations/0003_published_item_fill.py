"""Render the feed item of every existing Published row (new rows get theirs when written)."""

from datetime import UTC

from django.db import migrations
from rest_framework.renderers import JSONRenderer

BATCH = 2000


def fill_items(apps, schema_editor):
    # A copy of publishing.feed.feed_item_json as of this migration (migrations must not follow later code).
    render = JSONRenderer().render
    Published = apps.get_model("publishing", "Published")
    last = 0
    while True:
        rows = list(Published.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not rows:
            return
        for row in rows:
            row.item = render({
                "seq": row.seq, "pub_id": row.pub_id, "kind": row.kind, "deleted": row.payload is None,
                "updated_at": row.updated_at.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z",
                "payload": row.payload,
            }).decode()
        Published.objects.bulk_update(rows, ["item"])
        last = rows[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ("publishing", "0002_published_item"),
    ]

    operations = [
        migrations.RunPython(fill_items, migrations.RunPython.noop),
    ]
