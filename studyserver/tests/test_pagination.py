"""limit / offset on every paginated list: a bad value is a 400 naming the parameter, never another page."""

import pytest

from study.tests import factories as f

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/study-topics",
    "/api/documents",
    "/api/study-sessions",
    "/api/study-questions",
    "/api/quiz-sessions",
    "/api/study-topics/{topic}/progress?tab=due",
]

BAD = [
    ("limit", "abc"),
    ("limit", "0"),
    ("limit", "-1"),
    ("limit", "1.5"),
    ("limit", "１"),  # fullwidth: int() would read it
    ("limit", "null"),
    ("offset", "null"),
    ("offset", "-5"),
    ("offset", "+2"),
    ("offset", " 2"),
    ("offset", "9" * 5000 + "x"),
]


@pytest.fixture
def lists(user):
    """Three of each kind of row, so that limit and offset have something to page through."""
    topic = f.StudyTopicFactory(user=user)
    f.StudyTopicFactory.create_batch(2, user=user)
    f.DocumentFactory.create_batch(3, user=user)
    f.StudySessionFactory.create_batch(3, user=user)
    questions = f.QuestionFactory.create_batch(3, user=user, study_topic=topic)
    for question in questions:
        f.QuestionProgressFactory(user=user, question=question, review_stage=1, due_at="2020-01-01T00:00:00Z")
    f.QuizSessionFactory.create_batch(3, user=user, study_topic=topic, status="abandoned")
    return [url.format(topic=topic.id) for url in LISTS]


def _ids(response) -> list[int]:
    return [row["id"] if "id" in row else row["question"]["id"] for row in response.json()["results"]]


def _with(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def test_a_bad_limit_or_offset_is_400_naming_it(api_client, lists):
    for url in lists:
        assert api_client.get(url).json()["count"] == 3, url
        for name, value in BAD:
            response = api_client.get(_with(url, f"{name}={value}"))
            assert response.status_code == 400, (url, name, value, response.content[:200])
            body = response.json()
            assert body["error_code"] == "invalid"
            assert list(body["errors"]) == [name], (url, name, value)


def test_good_values_page_as_asked(api_client, lists):
    for url in lists:
        every = _ids(api_client.get(url))
        assert len(every) == 3, url
        assert _ids(api_client.get(_with(url, "limit=2&offset=1"))) == every[1:], url
        assert _ids(api_client.get(_with(url, "limit=&offset="))) == every, url  # empty: absent
        assert _ids(api_client.get(_with(url, "limit=002&offset=0001"))) == every[1:]
        # Above the maximum is clamped, however long; past the end is an empty page, however far.
        assert _ids(api_client.get(_with(url, f"limit={'9' * 5000}"))) == every
        page = api_client.get(_with(url, f"offset={'9' * 5000}")).json()
        assert (page["count"], page["results"], page["next"]) == (3, [], None), url
        far = api_client.get(_with(url, "limit=1&offset=" + "0" * 30 + "2"))  # leading zeros: offset 2
        assert _ids(far) == every[2:], url


@pytest.mark.parametrize(
    ("query", "limit"),
    [("", 50), ("limit=1", 1), ("limit=200", 200), ("limit=201", 200), ("limit=1000", 200),
     ("limit=" + "9" * 18, 200), ("limit=" + "9" * 19, 200)],
)
def test_the_default_page_is_50_and_the_largest_200(query, limit):
    # (the lists above hold 3 rows: they cannot show either figure)
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from studyserver.pagination import LimitOffsetPagination

    request = Request(APIRequestFactory().get(f"/api/study-sessions?{query}"))
    assert LimitOffsetPagination().get_limit(request) == limit


def test_offset_zero_is_the_first_page(api_client, lists):
    """`offset=0` is what a client sends for the first page (DRF's own `previous` link leaves it out): not a 400."""
    for url in lists:
        response = api_client.get(_with(url, "limit=2&offset=0"))
        assert response.status_code == 200, (url, response.content[:200])
        assert _ids(response) == _ids(api_client.get(url))[:2], url
