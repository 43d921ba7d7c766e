"""GET /publish/feed: the Bearer gate, paging by seq, kinds, one query per page, the viewer throttle."""


import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from publishing import services
from publishing.models import PublishKind
from publishing.tests.viewer_fixtures import VIEWER_TOKEN
from study.tests.factories import MemoCardFactory, QuestionFactory, StudyTopicFactory
from studyserver.testing import fresh_address

pytestmark = pytest.mark.django_db

FEED = "/publish/feed"


@pytest.fixture
def seeded():
    """Two topics, three questions (of the first topic), two cards: published in one drain."""
    topic = StudyTopicFactory()
    StudyTopicFactory(user=topic.user)
    questions = QuestionFactory.create_batch(3, study_topic=topic)
    cards = MemoCardFactory.create_batch(2, user=topic.user, study_topic=topic)
    services.publish_request_many(kind=PublishKind.STUDY_QUESTION, source_ids=[q.id for q in questions])
    services.publish_request_many(kind=PublishKind.STUDY_CARD, source_ids=[c.id for c in cards])
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id + 1)
    services.publish_drain()
    return topic


def test_token_unset_is_503(settings, viewer_client):
    settings.VIEWER_SYNC_TOKEN = ""
    response = viewer_client.get(FEED)
    assert response.status_code == 503
    assert response.json()["error_code"] == "unavailable"


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        (None, 401, "not_authenticated"),
        ("Bearer ", 401, "not_authenticated"),
        (f"Token {VIEWER_TOKEN}", 401, "not_authenticated"),
        ("Bearer wrong-token", 403, "permission_denied"),
        (f"Bearer {VIEWER_TOKEN}x", 403, "permission_denied"),
        (f"Bearer {VIEWER_TOKEN[:-1]}", 403, "permission_denied"),  # a prefix of the token is not the token
        (f"Bearer {VIEWER_TOKEN[0]}", 403, "permission_denied"),
    ],
)
def test_missing_or_wrong_token(header, status, code):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(FEED)
    assert response.status_code == status
    assert response.json()["error_code"] == code


@pytest.mark.parametrize("header", [f"bearer {VIEWER_TOKEN}", f"BEARER {VIEWER_TOKEN}", f"Bearer  {VIEWER_TOKEN} "])
def test_the_scheme_in_any_case_and_spaces_around_the_token_are_accepted(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get(FEED).status_code == 200


@pytest.mark.parametrize("path", [FEED, FEED + "/"])
def test_feed_answers_with_and_without_slash(viewer_client, seeded, path):
    response = viewer_client.get(path)
    assert response.status_code == 200
    body = response.json()
    # one drain batch: referenced kinds first, then by id
    assert [i["kind"] for i in body["items"]] == ["study_topic"] * 2 + ["study_question"] * 3 + ["study_card"] * 2
    assert body["has_more"] is False
    assert body["next_after"] == body["items"][-1]["seq"]
    item = body["items"][2]
    assert set(item) == {"seq", "pub_id", "kind", "deleted", "updated_at", "payload"}
    assert item["payload"]["topic_pub_id"] == body["items"][0]["pub_id"]


def test_paging_follows_next_after_in_ascending_seq(viewer_client, seeded, django_assert_num_queries):
    seen, after = [], 0
    while True:
        with django_assert_num_queries(1):
            body = viewer_client.get(FEED, {"after": after, "limit": 2}).json()
        seqs = [i["seq"] for i in body["items"]]
        assert seqs == sorted(seqs) and all(s > after for s in seqs)
        seen += seqs
        after = body["next_after"]
        if not body["has_more"]:
            break
    assert len(seen) == 7 == len(set(seen))
    empty = viewer_client.get(FEED, {"after": after}).json()
    assert empty == {"items": [], "next_after": after, "has_more": False}


def test_an_after_past_the_feed_is_409_not_an_empty_page(viewer_client, seeded, django_assert_num_queries):
    """A viewer whose `after` this feed never reached (the server restored from an older backup, the feed reset)
    would wait on empty pages for seqs it thinks it has, and miss every change numbered up to its `after`."""
    top = max(item["seq"] for item in viewer_client.get(FEED).json()["items"])
    with django_assert_num_queries(2):  # the empty page, then the top seq
        response = viewer_client.get(FEED, {"after": top + 1})
    assert response.status_code == 409
    assert response.json() == {
        "error_code": "conflict",
        "detail": f"The feed's last seq is {top}, before after={top + 1}: it was restored from an older backup or "
        "reset. Pull it again from after=0.",
        "last_seq": top,
    }
    assert viewer_client.get(FEED, {"after": 2**63 - 1}).json()["last_seq"] == top
    # at the top, the feed is only up to date; a kind with nothing past `after` while others have is too
    assert viewer_client.get(FEED, {"after": top}).json() == {"items": [], "next_after": top, "has_more": False}
    assert viewer_client.get(FEED, {"after": top - 1, "kinds": "study_question"}).status_code == 200


def test_a_moved_row_keeps_the_top_seq(viewer_client):
    """A row published again moves up to a new seq: the old top is no longer any row's, but an `after` there is
    still one the feed handed out."""
    from study.models import StudyTopic

    topic = StudyTopicFactory()
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
    services.publish_drain()
    [first] = viewer_client.get(FEED).json()["items"]
    StudyTopic.objects.filter(id=topic.id).update(name="renamed")
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
    services.publish_drain()
    [moved] = viewer_client.get(FEED).json()["items"]
    top = first["seq"]
    assert (moved["pub_id"], moved["seq"]) == (first["pub_id"], top + 1)  # no row is left at `top`
    assert viewer_client.get(FEED, {"after": top}).json()["items"] == [moved]
    assert viewer_client.get(FEED, {"after": top + 1}).status_code == 200
    assert viewer_client.get(FEED, {"after": top + 2}).status_code == 409


def test_an_empty_feed_answers_after_0_and_refuses_any_other(viewer_client):
    assert viewer_client.get(FEED).json() == {"items": [], "next_after": 0, "has_more": False}
    response = viewer_client.get(FEED, {"after": 5})
    assert (response.status_code, response.json()["last_seq"]) == (409, 0)


def test_kinds_filter(viewer_client, seeded):
    body = viewer_client.get(FEED, {"kinds": "study_card, study_topic"}).json()
    assert sorted({i["kind"] for i in body["items"]}) == ["study_card", "study_topic"]
    assert len(body["items"]) == 4


@pytest.mark.parametrize(
    "params",
    [
        {"kinds": "study_card,nope"},
        {"after": "abc"},
        {"after": "-1"},
        {"after": str(2**70)},
        {"limit": "0"},
        {"limit": "1e9"},
        {"after": "\uff11"},  # fullwidth: int() reads it; ASCII digits only, as the paginator reads them
        {"limit": "5.0"},
        {"after": " 5"},
    ],
)
def test_bad_query_is_400(viewer_client, params):
    response = viewer_client.get(FEED, params)
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"


@pytest.mark.parametrize("limit", [10**6, 3 * 10**9, 10**30])  # any size a client may send: clamped, as /api's
def test_limit_is_capped_at_2000(viewer_client, seeded, limit):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        body = viewer_client.get(FEED, {"limit": limit}).json()
    assert len(body["items"]) == 7 and body["has_more"] is False
    # (7 rows cannot show the cap) one more than the page is read, to know whether more follow
    assert [q["sql"] for q in captured.captured_queries if "LIMIT" in q["sql"]][-1].endswith("LIMIT 2001")


def test_a_page_that_ends_exactly_at_the_last_row_has_no_more(viewer_client, seeded):
    assert viewer_client.get(FEED, {"limit": 7}).json()["has_more"] is False
    assert viewer_client.get(FEED, {"limit": 6}).json()["has_more"] is True


def test_tombstones_have_null_payload(viewer_client, seeded):
    card = seeded.cards.first()
    card.needs_review = True
    card.save()
    services.publish_request(kind=PublishKind.STUDY_CARD, source_id=card.id)
    services.publish_drain()
    last = viewer_client.get(FEED, {"kinds": "study_card"}).json()["items"][-1]
    assert last["deleted"] is True and last["payload"] is None


def test_viewer_channel_is_throttled_with_retry_after(settings, viewer_client):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "viewer": "3/min"},
    }
    address = fresh_address()  # a bucket of its own
    statuses = [viewer_client.get(FEED, REMOTE_ADDR=address).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = viewer_client.get(FEED, REMOTE_ADDR=address)
    assert response.status_code == 429
    assert response.json()["error_code"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_wrong_tokens_are_throttled_too(settings, viewer_client):
    """Guessing the token costs requests like anything else: after the rate, even the right token waits."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "viewer": "3/min"},
    }
    address = fresh_address()
    guesser = APIClient()
    guesses = [guesser.get(FEED, REMOTE_ADDR=address, HTTP_AUTHORIZATION=f"Bearer guess-{n}").status_code
               for n in range(4)]
    assert guesses == [403, 403, 403, 429]
    assert viewer_client.get(FEED, REMOTE_ADDR=address).status_code == 429


def test_a_forged_forwarded_for_does_not_escape_the_throttle(settings, viewer_client):
    """Without a proxy configured (NUM_PROXIES=0) the connection's address counts, not X-Forwarded-For."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "viewer": "2/min"},
    }
    address = fresh_address()
    statuses = [viewer_client.get(FEED, REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
                for n in range(3)]
    assert statuses == [200, 200, 429]


def test_viewer_throttle_can_be_turned_off(settings, viewer_client):
    """THROTTLE_VIEWER_RATE=off (a rate of None): no limit, and nothing is counted in the cache."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "viewer": None},
    }
    address = fresh_address()
    assert [viewer_client.get(FEED, REMOTE_ADDR=address).status_code for _ in range(5)] == [200] * 5
    assert cache.get(f"throttle_viewer_{address}") is None


@pytest.mark.parametrize("size", [2, 40])
def test_one_query_per_page_whatever_its_size(viewer_client, size, django_assert_num_queries):
    topic = StudyTopicFactory()
    questions = QuestionFactory.create_batch(size, study_topic=topic)
    cards = [MemoCardFactory(user=topic.user, study_topic=topic, source_question=q) for q in questions]
    services.publish_request_many(kind=PublishKind.STUDY_QUESTION, source_ids=[q.id for q in questions])
    services.publish_request_many(kind=PublishKind.STUDY_CARD, source_ids=[c.id for c in cards])
    services.publish_drain()
    with django_assert_num_queries(1):
        body = viewer_client.get(FEED, {"limit": 2000}).json()
    assert len(body["items"]) == 1 + 2 * size and body["has_more"] is False
    with django_assert_num_queries(1):
        body = viewer_client.get(FEED, {"kinds": "study_card"}).json()
    assert len(body["items"]) == size
