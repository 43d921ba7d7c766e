"""Feed items are rendered once, when their row is written, as FeedItemSerializer + DRF's JSON renderer render
the row (payload keys in projection order; jsonb reorders them when read back); pages are those texts joined.
Times are UTC whatever TIME_ZONE is."""

import importlib
import json
from datetime import UTC, datetime

import pytest
from rest_framework.renderers import JSONRenderer

from publishing import services
from publishing.api import FeedItemSerializer
from publishing.models import Published, PublishKind
from publishing.tests.test_feed import FEED, seeded  # noqa: F401
from study.models import StudyTopic

pytestmark = pytest.mark.django_db

ITEM_FIELDS = ("seq", "pub_id", "kind", "deleted", "updated_at", "payload")
TRICKY_NAME = "줄\u2028바꿈\u2029 😀 \"q\" \\ \n\t\x01 </script>"


def _publish_at(kind: str, source_id: int, when: datetime) -> None:
    services.publish_sources(kind_ids={kind: [source_id]}, now=when)


def _check(response, rows: list[dict], next_after: int, has_more: bool) -> None:
    """The body is the serializer rendering of the rows, and each item is DRF's rendering byte for byte."""
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    expected = {"items": FeedItemSerializer(rows, many=True).data, "next_after": next_after, "has_more": has_more}
    assert json.loads(response.content) == json.loads(JSONRenderer().render(expected))
    for item in json.loads(response.content)["items"]:
        text = Published.objects.get(seq=item["seq"]).item
        assert text.encode() == JSONRenderer().render(json.loads(text))
        assert text in response.content.decode()


@pytest.mark.parametrize("time_zone", ["Asia/Seoul", "UTC", "America/New_York", "Asia/Kathmandu"])
def test_feed_body_is_the_serializer_rendering_in_utc(settings, viewer_client, seeded, time_zone):  # noqa: F811
    settings.TIME_ZONE = time_zone
    topics = list(StudyTopic.objects.filter(user=seeded.user).order_by("id"))
    StudyTopic.objects.filter(pk=topics[0].pk).update(name=TRICKY_NAME)
    _publish_at(PublishKind.STUDY_TOPIC, topics[0].pk, datetime(2026, 7, 2, 3, 4, 5, 120, tzinfo=UTC))
    StudyTopic.objects.filter(pk=topics[1].pk).update(deleted_at=datetime(2026, 1, 1, tzinfo=UTC))
    _publish_at(PublishKind.STUDY_TOPIC, topics[1].pk, datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))

    rows = list(Published.objects.order_by("seq").values(*ITEM_FIELDS))
    assert rows[-2]["payload"]["name"] == TRICKY_NAME and rows[-1]["deleted"] is True
    _check(viewer_client.get(FEED, {"limit": 3, "after": 0}), rows[:3], rows[2]["seq"], True)
    rest = viewer_client.get(FEED, {"limit": 2000, "after": rows[2]["seq"]})
    _check(rest, rows[3:], rows[-1]["seq"], False)

    items = json.loads(rest.content)["items"]
    assert items[-2]["updated_at"] == "2026-07-02T03:04:05.000120Z"
    assert items[-1]["updated_at"] == "1999-12-31T23:59:59.999999Z"
    assert items[-1]["payload"] is None and items[-1]["deleted"] is True
    assert "\\u2028" in rest.content.decode()  # escaped like DRF, so the body is valid JavaScript too


def test_browsable_api_shows_the_same_page(viewer_client, seeded):  # noqa: F811
    as_json = viewer_client.get(FEED, {"limit": 4}).json()
    page = viewer_client.get(FEED, {"limit": 4, "format": "json"}).json()
    html = viewer_client.get(FEED, {"limit": 4}, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert page == as_json
    assert as_json["items"][0]["pub_id"] in html.content.decode()


def test_republishing_renders_the_item_again(viewer_client, seeded):  # noqa: F811
    topic = StudyTopic.objects.filter(user=seeded.user).order_by("id").first()
    before = Published.objects.get(kind=PublishKind.STUDY_TOPIC, source_id=topic.pk)
    StudyTopic.objects.filter(pk=topic.pk).update(name="renamed")
    _publish_at(PublishKind.STUDY_TOPIC, topic.pk, datetime(2030, 1, 1, tzinfo=UTC))
    after = Published.objects.get(pk=before.pk)
    assert after.seq > before.seq
    assert json.loads(after.item) == {
        "seq": after.seq, "pub_id": before.pub_id, "kind": "study_topic", "deleted": False,
        "updated_at": "2030-01-01T00:00:00Z", "payload": {**before.payload, "name": "renamed"},
    }
    assert viewer_client.get(FEED, {"after": before.seq}).json()["items"][-1] == json.loads(after.item)


def test_empty_page_keeps_after(viewer_client, seeded):  # noqa: F811
    last = Published.objects.order_by("-seq").first()
    response = viewer_client.get(FEED, {"after": last.seq})
    assert response.json() == {"items": [], "next_after": last.seq, "has_more": False}
    other_kind = next(kind for kind in PublishKind.values if kind != last.kind)
    response = viewer_client.get(FEED, {"after": last.seq - 1, "kinds": other_kind})  # only `last` is past it
    assert response.json() == {"items": [], "next_after": last.seq - 1, "has_more": False}
    response = viewer_client.get(FEED, {"after": 0, "kinds": "study_card", "limit": 1})
    cards = list(Published.objects.filter(kind="study_card").order_by("seq").values_list("seq", flat=True))
    assert response.json()["next_after"] == cards[0]
    assert [item["kind"] for item in response.json()["items"]] == ["study_card"]
    assert response.json()["has_more"] is (len(cards) > 1)


def test_migration_renders_the_items_of_existing_rows(seeded):  # noqa: F811
    from django.apps import apps

    fill = importlib.import_module("publishing.migrations.0003_published_item_fill").fill_items
    written = {pk: json.loads(item) for pk, item in Published.objects.values_list("pk", "item")}
    Published.objects.update(item="{}")  # rows from before the column held nothing to serve
    fill(apps, None)
    # the same items; payload keys come back in jsonb's order, not the projection's
    assert {pk: json.loads(item) for pk, item in Published.objects.values_list("pk", "item")} == written
