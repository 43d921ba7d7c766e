"""studyserver.parsers.JSONParser: a lone surrogate escape is refused whatever the body's declared charset."""

import pytest

from study.models import StudyTopic

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("charset", ["utf-16", "utf-32"])
def test_a_lone_surrogate_in_a_text_field_is_refused_in_any_declared_charset(api_client, user, charset):
    """In these charsets the body's bytes do not spell the escape in ASCII, so every parsed string is checked: a
    plain text field (a topic's name) has no JSON-value check of its own behind the parser."""
    api_client.raise_request_exception = False
    raw = '{"name": "a\\ud800"}'.encode(charset)
    response = api_client.post("/api/study-topics", raw, content_type=f"application/json; charset={charset}")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {
        "non_field_errors": ["The text is not valid Unicode: a \\u escape stands for a lone surrogate."]
    }
    assert not StudyTopic.objects.filter(user=user).exists()


def nested(depth: int, kind: type) -> object:
    """A JSON value `depth` levels deep: lists, or objects, holding a scalar at the bottom."""
    value: object = 1
    for _ in range(depth):
        value = [value] if kind is list else {"k": value}
    return value


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"year": float("nan")}, "Not a JSON value (NaN and infinity are none)."),
        ([float("inf")], "Not a JSON value (NaN and infinity are none)."),
        ({"exam": "a\x00b"}, "NUL characters are not allowed."),
        ({"a\ud800": 1}, "The text is not valid Unicode: a \\u escape stands for a lone surrogate."),
        (nested(64, list), None),
        (nested(65, list), "Nested more than 64 levels deep."),
        (nested(64, dict), None),
        (nested(65, dict), "Nested more than 64 levels deep."),
        ({"strokes": [nested(62, list)]}, None),  # objects and lists count alike
        ({"strokes": [nested(63, list)]}, "Nested more than 64 levels deep."),
        ({"year": 2024, "exam": "가스기사"}, None),
    ],
)
def test_unstorable_json_names_what_no_database_can_store(value, problem):
    """The one rule behind the API's and the admin's JSON values (their own checks, such as the admin's and DRF's
    refusal of NaN, aside)."""
    from studyserver.parsers import unstorable_json

    assert unstorable_json(value) == problem
