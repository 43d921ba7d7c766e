"""Both feed bodies (PostgreSQL-built and the Python twin) render as FeedItemSerializer (time zone, "Z", tombstones).

The Python twin renders byte for byte; the PostgreSQL body keeps jsonb's spacing inside payloads, so it is
compared as JSON.
"""

import json
from datetime import UTC, datetime

import pytest
from rest_framework.renderers import JSONRenderer

from publishing.api import FeedItemSerializer
from publishing.models import Published
from publishing.selectors import FEED_FIELDS
from publishing.tests.test_feed import FEED, seeded  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("time_zone", ["Asia/Seoul", "UTC", "America/New_York"])
def test_feed_body_is_the_serializer_rendering(settings, viewer_client, seeded, time_zone, hot_path):  # noqa: F811
    settings.TIME_ZONE = time_zone
    rows = list(Published.objects.order_by("seq"))
    Published.objects.filter(pk=rows[0].pk).update(updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    Published.objects.filter(pk=rows[1].pk).update(updated_at=datetime(2026, 7, 2, 3, 4, 5, 120, tzinfo=UTC))
    Published.objects.filter(pk=rows[2].pk).update(deleted=True, payload=None)
    Published.objects.filter(pk=rows[3].pk).update(payload={"name": "줄\u2028바꿈 😀 \"q\" \\\n", "n": [1, None]})
    Published.objects.filter(pk=rows[4].pk).update(updated_at=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))

    def check(response, page, has_more):
        expected = {"items": FeedItemSerializer(page, many=True).data, "next_after": page[-1]["seq"],
                    "has_more": has_more}
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        if hot_path == "python":
            assert response.content == JSONRenderer().render(expected)
        else:
            assert json.loads(response.content) == json.loads(JSONRenderer().render(expected))

    page = list(Published.objects.order_by("seq").values(*FEED_FIELDS)[:3])
    check(viewer_client.get(FEED, {"limit": 3, "after": 0}), page, True)
    rest = list(Published.objects.order_by("seq").values(*FEED_FIELDS)[3:])
    check(viewer_client.get(FEED, {"limit": 2000, "after": page[-1]["seq"]}), rest, False)


def test_empty_page_keeps_after(viewer_client, seeded, hot_path):  # noqa: F811
    last = Published.objects.order_by("-seq").values_list("seq", flat=True).first()
    response = viewer_client.get(FEED, {"after": last + 5})
    assert response.json() == {"items": [], "next_after": last + 5, "has_more": False}
    response = viewer_client.get(FEED, {"after": 0, "kinds": "study_card", "limit": 1})
    cards = list(Published.objects.filter(kind="study_card").order_by("seq").values_list("seq", flat=True))
    assert response.json()["next_after"] == cards[0]
    assert [item["kind"] for item in response.json()["items"]] == ["study_card"]
    assert response.json()["has_more"] is (len(cards) > 1)
