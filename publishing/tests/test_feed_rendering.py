"""The feed's hand-built items render byte for byte as FeedItemSerializer did (time zone, "Z", tombstones)."""

from datetime import UTC, datetime

import pytest
from rest_framework.renderers import JSONRenderer

from publishing.api import FeedItemSerializer
from publishing.models import Published
from publishing.selectors import FEED_FIELDS
from publishing.tests.test_feed import FEED, seeded  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("time_zone", ["Asia/Seoul", "UTC", "America/New_York"])
def test_feed_body_is_the_serializer_rendering(settings, viewer_client, seeded, time_zone):  # noqa: F811
    settings.TIME_ZONE = time_zone
    rows = list(Published.objects.order_by("seq"))
    Published.objects.filter(pk=rows[0].pk).update(updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    Published.objects.filter(pk=rows[1].pk).update(updated_at=datetime(2026, 7, 2, 3, 4, 5, 120, tzinfo=UTC))
    Published.objects.filter(pk=rows[2].pk).update(deleted=True, payload=None)
    Published.objects.filter(pk=rows[3].pk).update(payload={"name": "줄\u2028바꿈 😀 \"q\" \\", "n": [1, None]})

    response = viewer_client.get(FEED, {"limit": 3, "after": 0})

    page = list(Published.objects.order_by("seq").values(*FEED_FIELDS)[:3])
    expected = {"items": FeedItemSerializer(page, many=True).data, "next_after": page[-1]["seq"], "has_more": True}
    assert response.status_code == 200
    assert response.content == JSONRenderer().render(expected)
    response = viewer_client.get(FEED, {"limit": 2000, "after": page[-1]["seq"]})
    rest = list(Published.objects.order_by("seq").values(*FEED_FIELDS)[3:])
    expected = {"items": FeedItemSerializer(rest, many=True).data, "next_after": rest[-1]["seq"], "has_more": False}
    assert response.content == JSONRenderer().render(expected)
