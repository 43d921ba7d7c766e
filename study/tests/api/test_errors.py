"""Hostile input at every endpoint of topics, documents and sessions: always a JSON 4xx, never a 500."""

import json
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from study.models import Question, StudySession, StudyTopic
from study.tests import factories as f
from studyserver.testing import fresh_address

pytestmark = pytest.mark.django_db

HUGE = 10**30

JSON_ENDPOINTS = [
    ("post", "/api/study-topics"),
    ("patch", "/api/study-topics/{topic}"),
    ("post", "/api/study-topics/{topic}/documents"),
    ("post", "/api/study-sessions"),
    ("patch", "/api/study-sessions/{session}"),
    ("post", "/api/study-sessions/{session}/assets"),
    ("post", "/api/auth/token"),
]

RAW_BODIES = [
    b"{not json",
    b'{"name": ',
    b"",
    b"[]",
    b"[1, 2, 3]",
    b'"just a string"',
    b"12345",
    b"null",
    b"\xff\xfe\x00garbage",
    b'{"name": NaN}',
    b'{"name": "\\ud800"}',
    b'{"name": "a\\u0000b"}',
    b"[" * 100_000 + b"]" * 100_000,  # deeper than Python's JSON parser goes (RecursionError)
    b'{"name": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
]

BAD_FIELDS = [
    {"name": HUGE, "study_type": ["x"], "description": {"a": 1}},
    {"name": "🔥" * 300},
    {"name": "\u0000"},
    {"name": "\ud800 lone surrogate"},
    {"document_id": HUGE, "asset_type": "audio"},
    {"document_id": -1, "asset_type": "audio"},
    {"document_id": "abc", "asset_type": "audio"},
    {"document_id": 1.5, "asset_type": "audio"},
    {"document_id": True, "asset_type": "audio"},
    {"document_id": None},
    {"asset_type": "📎", "role": "🎭", "sort_order": HUGE},
    {"sort_order": -HUGE, "asset_type": "audio"},
    {"study_type": "cooking", "mode": "sleep", "review_state": "zen"},
    {"metadata": {"k": "\u0000"}, "strokes_json": {"\u0000": 1}},
    {"metadata": {"k": "\ud800"}},
    {"metadata": "not an object", "strokes_json": [1]},
    {"target_count": HUGE, "canvas_width": -5, "canvas_height": "wide"},
    {"repetition_count": HUGE, "next_review_at": "tomorrow-ish"},
    {"next_review_at": "9999-99-99T99:99:99Z"},
    {"study_topic_id": HUGE},
    {"study_topic_id": "🙂"},
    {"study_topic_id": 0},
    {"source_text": "😀" * 10000, "subject": "x" * 201},
    {"username": {"a": 1}, "password": [1]},
]


@pytest.fixture(autouse=True)
def _own_address(api_client):
    """A private client address: the many token requests here must not eat other tests' auth rate."""
    api_client.defaults["REMOTE_ADDR"] = fresh_address()


@pytest.fixture
def objects(user):
    topic = f.StudyTopicFactory(user=user)
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    asset = f.SessionAssetFactory(session=session, document=doc)
    return {"topic": topic.id, "session": session.id, "document": doc.id, "asset": asset.id}


def assert_error_body(body: dict) -> None:
    """API.md: `error_code` and `detail`; an `invalid` one adds `errors`, field → list of messages."""
    assert isinstance(body["error_code"], str) and isinstance(body["detail"], str)
    if body["error_code"] == "invalid":
        errors = body["errors"]
        assert errors and all(isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
                              for messages in errors.values()), body


def assert_json_4xx(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert_error_body(response.json())


def assert_not_500(response) -> None:
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert_error_body(response.json())


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b"{bad"),
    ("multipart/form-data", b"no boundary"),  # DRF's "Multipart form parse error"
])
def test_a_body_that_cannot_be_parsed_is_invalid_with_errors(api_client, content_type, body):
    response = api_client.post("/api/study-topics", body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": [response.json()["detail"]]}


NOT_AN_OBJECT = RAW_BODIES[:9]


@pytest.mark.parametrize(("method", "url"), JSON_ENDPOINTS)
def test_malformed_or_wrong_shaped_json(api_client, objects, method, url):
    for body in RAW_BODIES:
        response = getattr(api_client, method)(url.format(**objects), body, content_type="application/json")
        lenient = body not in NOT_AN_OBJECT or (body == b"" and (method == "patch" or url == "/api/study-sessions"))
        if lenient:  # unknown fields are ignored; an empty PATCH changes nothing; every session field is optional
            assert_not_500(response)
        else:
            assert_json_4xx(response)


@pytest.mark.parametrize(("method", "url"), JSON_ENDPOINTS)
def test_wrong_types_huge_numbers_enums_unicode(api_client, objects, method, url):
    for payload in BAD_FIELDS:
        raw = json.dumps(payload).encode()
        assert_not_500(getattr(api_client, method)(url.format(**objects), raw, content_type="application/json"))


@pytest.mark.parametrize("payload", BAD_FIELDS[:4] + BAD_FIELDS[12:17], ids=range(9))
def test_bad_fields_on_create_are_400_invalid(api_client, payload):
    url = "/api/study-topics" if "name" in payload else "/api/study-sessions"
    response = api_client.post(url, json.dumps(payload).encode(), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "invalid"
    assert response.json()["errors"]


def test_a_lone_surrogate_escape_is_refused_before_anything_is_written(api_client, user):
    # json.loads turns "\ud800" into a string no UTF-8 database text can hold; SQLite (the demo) stored it and
    # every response rendering it failed afterwards. Anywhere in the body, keys included, it is refused.
    for raw in (b'{"name": "a\\ud800"}', b'{"name": "t", "description": {"\\uDFFF": 1}}'):
        response = api_client.post("/api/study-topics", raw, content_type="application/json")
        assert response.status_code == 400, response.content
        assert response.json()["error_code"] == "invalid"
        assert "lone surrogate" in str(response.json()["errors"])
    assert not StudyTopic.objects.filter(user=user).exists()

    # A pair spells one character, as clients that escape everything non-ASCII send it.
    response = api_client.post("/api/study-topics", b'{"name": "fire \\ud83d\\udd25"}', content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "fire \N{FIRE}"


@pytest.mark.parametrize("charset", ["utf-16", "utf-32", "utf-7"])
def test_a_lone_surrogate_escape_is_refused_in_any_declared_charset(api_client, user, charset):
    # In these the body's bytes do not spell the escape in ASCII; SQLite stored the session's metadata and
    # every response rendering it (this POST's own included) failed.
    api_client.raise_request_exception = False
    raw = '{"metadata": {"note": "a\\ud800"}}'.encode(charset)
    response = api_client.post("/api/study-sessions", raw, content_type=f"application/json; charset={charset}")
    assert response.status_code == 400, response.content
    assert "lone surrogate" in str(response.json()["errors"])
    assert not StudySession.objects.filter(user=user).exists()

    response = api_client.post("/api/study-sessions", '{"metadata": {"note": "fire \\ud83d\\udd25"}}'.encode(charset),
                               content_type=f"application/json; charset={charset}")
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == {"note": "fire \N{FIRE}"}


# "1" * 5000: int() refuses texts of over 4,300 digits with a ValueError (it was a 500).
BAD_IDS = ["abc", "1.5", "-1", "0", str(HUGE), "1" * 5000, "１", "%F0%9F%94%A5", "1e3", "0x10", "%00"]

ID_URLS = [
    ("get", "/api/study-topics/{id}"),
    ("patch", "/api/study-topics/{id}"),
    ("delete", "/api/study-topics/{id}"),
    ("post", "/api/study-topics/{id}/documents"),
    ("delete", "/api/study-topics/{topic}/documents/{id}"),
    ("get", "/api/study-topics/by-document/{id}"),
    ("get", "/api/documents/{id}"),
    ("delete", "/api/documents/{id}"),
    ("get", "/api/documents/{id}/download"),
    ("get", "/api/study-sessions/{id}"),
    ("patch", "/api/study-sessions/{id}"),
    ("delete", "/api/study-sessions/{id}"),
    ("post", "/api/study-sessions/{id}/assets"),
    ("delete", "/api/study-sessions/{session}/assets/{id}"),
    ("post", "/api/study-sessions/{id}/snapshot"),
]

# Routes whose owners' ids the isolation test walks elsewhere (studyserver/tests/test_isolation.py).
OTHER_ID_URLS = [
    ("get", "/api/study-topics/{id}/progress?tab=due"),
    ("get", "/api/study-questions/{id}"),
    ("post", "/api/study-questions/{id}/review-complete"),
    ("get", "/api/quiz-sessions/{id}"),
    ("post", "/api/quiz-sessions/{id}/finish"),
    ("get", "/api/study-cards/{id}"),
    ("post", "/api/study-cards/{id}/rate"),
]


@pytest.mark.parametrize(("method", "url"), ID_URLS + OTHER_ID_URLS)
def test_non_integer_and_huge_ids_in_the_url_are_404(api_client, objects, method, url):
    for bad_id in BAD_IDS:
        response = getattr(api_client, method)(url.format(**objects, id=bad_id), {}, format="json")
        assert response.status_code == 404, (bad_id, response.status_code, response.content[:300])
        assert response.json()["error_code"] == "not_found"


def test_an_id_spelled_other_than_in_ascii_digits_is_not_that_object(api_client, user):
    topic = f.StudyTopicFactory(user=user)
    card = f.MemoCardFactory(user=user)
    fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in str(topic.id))  # int() reads "１２" as 12
    for spelling in (fullwidth, f"+{topic.id}"):
        response = api_client.get(f"/api/study-topics/{spelling}")
        assert response.status_code == 404, (spelling, response.content[:200])
    assert api_client.get(f"/api/study-topics/{topic.id}").status_code == 200
    card_fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in str(card.id))
    assert api_client.get(f"/api/study-cards/{card_fullwidth}").status_code == 404
    assert api_client.get(f"/api/study-cards/{card.id}").status_code == 200


def other_spellings(number: int) -> list:
    """What int() or DRF read as `number` but ids are not spelled as: fullwidth digits, signs, spaces,
    underscores, a decimal point, a float."""
    fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in str(number))
    digits = str(number)
    return [fullwidth, f"+{digits}", f" {digits}", f"{digits} ", f"{digits[0]}_{digits[1:] or 0}", f"{digits}.0",
            float(number)]


def test_ids_in_filters_and_bodies_are_ascii_digits_too(api_client, user):
    topic = f.StudyTopicFactory(user=user, name="가스")
    f.StudySessionFactory(user=user, study_topic=topic)
    document = f.DocumentFactory(user=user)
    session = f.StudySessionFactory(user=user)
    for spelling in other_spellings(topic.id):
        if isinstance(spelling, float):
            continue  # a query string holds text only
        for url in ("/api/study-sessions", "/api/documents", "/api/study-questions"):
            response = api_client.get(url, {"study_topic_id": spelling})
            assert response.status_code == 400, (url, spelling, response.content[:200])
            assert response.json()["error_code"] == "invalid"
    assert api_client.get("/api/study-sessions", {"study_topic_id": str(topic.id)}).json()["count"] == 1
    for spelling in other_spellings(document.id):
        response = api_client.post(f"/api/study-sessions/{session.id}/assets",
                                   {"document_id": spelling, "asset_type": "reference"}, format="json")
        assert response.status_code == 400, (spelling, response.content[:200])
        assert "document_id" in response.json()["errors"]
    url = f"/api/study-sessions/{session.id}/assets"
    response = api_client.post(url, {"document_id": document.id, "asset_type": "reference"}, format="json")
    assert response.status_code == 201, response.content[:200]
    response = api_client.post(url, {"document_id": str(document.id), "asset_type": "audio"}, format="multipart")
    assert response.status_code == 201, response.content[:200]  # multipart sends the digits as text
    assert session.assets.count() == 2


@pytest.mark.parametrize(("method", "url"), ID_URLS)
def test_other_users_ids_are_404(api_client, other_user, method, url):
    topic = f.StudyTopicFactory(user=other_user)
    session = f.StudySessionFactory(user=other_user)
    doc = f.DocumentFactory(user=other_user)
    asset = f.SessionAssetFactory(session=session, document=doc)
    target = {"topic": topic.id, "session": session.id}
    ident = {"study-topics": topic.id, "documents": doc.id, "study-sessions": session.id}[url.split("/")[2]]
    if "{topic}" in url or "{session}" in url or "by-document" in url:
        ident = {"documents/{id}": doc.id, "assets/{id}": asset.id, "by-document": doc.id}[
            next(k for k in ("documents/{id}", "assets/{id}", "by-document") if k in url)
        ]
    response = getattr(api_client, method)(url.format(**target, id=ident), {}, format="json")
    assert response.status_code == 404, (url, response.status_code)


LIST_QUERIES = [
    "/api/study-topics?limit=abc&offset=-5",
    f"/api/study-topics?limit={HUGE}&offset={HUGE}",
    "/api/documents?study_topic_id=abc",
    f"/api/documents?study_topic_id={HUGE}",
    "/api/documents?format=%F0%9F%94%A5&tag=%00&q=" + "x" * 1000,
    "/api/documents?tag=a%00b",
    "/api/study-sessions?order=🙂",
    f"/api/study-sessions?document_id={HUGE}&study_topic_id=-1",
    "/api/study-sessions?due_before=not-a-date",
    "/api/study-sessions?subject=%00",
    "/api/study-sessions?asset_type=&mode=&order=",
    f"/api/study-sessions?limit=1&offset={HUGE}",
]


def test_list_query_parameters_never_500(api_client, objects):
    for query in LIST_QUERIES:
        assert_not_500(api_client.get(query))


@pytest.mark.parametrize("url", ["/api/documents", "/api/study-sessions/{session}/snapshot"])
def test_multipart_edge_cases(api_client, objects, url, _isolated_media):
    url = url.format(**objects)
    before = sorted(p for p in _isolated_media.rglob("*") if p.is_file())
    broken = api_client.generic("POST", url, b"--xx\r\nnonsense", content_type="multipart/form-data; boundary=xx")
    assert_json_4xx(broken)
    no_boundary = api_client.generic("POST", url, b"abc", content_type="multipart/form-data")
    assert_json_4xx(no_boundary)
    as_text = api_client.post(url, {"file": "just text", "sort_order": str(HUGE), "study_topic_id": "x"})
    assert_json_4xx(as_text)
    as_json = api_client.post(url, {"file": None}, format="json")
    assert_json_4xx(as_json)
    assert sorted(p for p in _isolated_media.rglob("*") if p.is_file()) == before


def _multipart(parts: int, *, files: bool) -> bytes:
    disposition = 'form-data; name="f{n}"; filename="f{n}.txt"' if files else 'form-data; name="f{n}"'
    body = b"".join(f"--xx\r\nContent-Disposition: {disposition.format(n=n)}\r\n\r\nx\r\n".encode()
                    for n in range(parts))
    return body + b"--xx--\r\n"


@pytest.mark.parametrize(("body", "message"), [
    (_multipart(101, files=True), "Too many files."),  # Django's DATA_UPLOAD_MAX_NUMBER_FILES (100)
    (_multipart(1001, files=False), "Too many fields."),  # DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)
])
def test_too_many_parts_is_400_invalid_and_stores_nothing(api_client, body, message, _isolated_media):
    """Django refuses them with its HTML "Bad Request" page; the files were an HTML 400 without error_code."""
    response = api_client.generic("POST", "/api/documents", body, content_type="multipart/form-data; boundary=xx")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"
    assert response.json()["errors"] == {"non_field_errors": [message]}
    assert not any(p.is_file() for p in _isolated_media.rglob("*"))


def test_a_format_that_names_no_renderer_is_ignored(api_client, user):
    """DRF read `?format=` as a renderer name and answered an unknown one with a 404, also for a valid POST, which
    then created nothing. One that names a renderer still picks it (the schema as JSON)."""
    response = api_client.get("/api/study-topics?format=xml")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    response = api_client.post("/api/study-topics?format=xml", {"name": "가스"}, format="json")
    assert response.status_code == 201 and response.json()["name"] == "가스"
    assert api_client.get("/api/schema?format=json")["Content-Type"].startswith("application/vnd.oai.openapi+json")


@pytest.mark.parametrize("method", ["get", "options"])
def test_the_docs_page_never_500s(client, method):
    """OPTIONS went to DRF's metadata, rendered with the page's HTML renderer, which has no template for it."""
    response = getattr(client, method)("/api/docs")
    assert response.status_code == (200 if method == "get" else 405)
    assert response.get("Allow", "GET, HEAD") == "GET, HEAD"


def test_unsupported_method_and_media_type(api_client, objects):
    assert_json_4xx(api_client.put(f"/api/study-topics/{objects['topic']}", {"name": "x"}, format="json"))
    response = api_client.post("/api/study-topics", b"<xml/>", content_type="application/xml")
    assert response.status_code == 415
    assert response.json()["error_code"] == "unsupported_media_type"


def test_errors_for_anonymous_clients_are_json(objects):
    response = APIClient().post("/api/study-topics", b"{bad", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error_code"] == "not_authenticated"


# --- JSON objects in form data, and texts NFC lengthens (found by probing past the fuzzer) ---------------------


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("field", ["metadata", "strokes_json"])
@pytest.mark.parametrize("form", ["multipart", "urlencoded"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_nested(1_000), "Nested more than 64 levels deep."),
        ("[" * 100_000 + "]" * 100_000, "Nested more than 64 levels deep."),  # json.loads: RecursionError
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ('{"a": NaN}', "valid JSON"),  # json.loads takes it; DRF's field refuses it
    ],
)
def test_a_json_object_sent_as_a_form_field_is_checked_like_a_json_body(api_client, user, field, form, text, message):
    """DRF parses a JSON field's text itself in form data, past the body parser's checks: a 500 (RecursionError),
    and on SQLite a stored lone surrogate that broke every later read of the user's sessions."""
    if form == "multipart":
        response = api_client.post("/api/study-sessions", {field: text}, format="multipart")
    else:
        response = api_client.post("/api/study-sessions", urlencode({field: text}),
                                   content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error_code"] == "invalid"
    assert message in " ".join(response.json()["errors"][field])
    assert not StudySession.objects.filter(user=user).exists()
    assert api_client.get("/api/study-sessions").status_code == 200


def test_how_deep_a_stored_json_object_may_nest(api_client, user):
    """900 deep passed the body parser and failed in Django's json.dumps on saving (500)."""
    for depth, status in ((64, 201), (65, 400), (900, 400)):
        response = api_client.post("/api/study-sessions", f'{{"metadata": {_nested(depth)}}}'.encode(),
                                   content_type="application/json")
        assert response.status_code == status, (depth, response.content[:200])
    session = api_client.post("/api/study-sessions", {"study_type": "language"}, format="json").json()
    response = api_client.patch(f"/api/study-sessions/{session['id']}", {"strokes_json": _nested(65)},
                                format="multipart")
    assert response.status_code == 400 and "strokes_json" in response.json()["errors"]
    assert StudySession.objects.filter(user=user).count() == 2


LENGTHENED = "\ufb2c"  # one character, three in NFC: 200 of them pass a 200-character check made before NFC


def test_the_length_limits_apply_to_the_stored_nfc_text(api_client, user, _isolated_media):
    topic = f.StudyTopicFactory(user=user)
    row = {"subject": "가스", "question_text": "good row", "choices": ["a", "b"], "correct_choice": 1}
    response = api_client.post("/api/study-questions/import", {
        "study_topic_id": topic.id, "questions": [row, {**row, "subject": LENGTHENED * 200}],
    }, format="json")
    # A bad row is listed and the good one created (it was a 400 for the whole import on PostgreSQL, and on SQLite
    # a 600-character subject in a 200-character column).
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == 1
    assert [(e["row"], list(e["errors"])) for e in response.json()["errors"]] == [(2, ["subject"])]

    created = api_client.post("/api/study-questions", {**row, "study_topic_id": topic.id}, format="json").json()
    for method, url in (("post", "/api/study-questions"), ("patch", f"/api/study-questions/{created['id']}")):
        response = getattr(api_client, method)(url, {**row, "study_topic_id": topic.id, "subject": LENGTHENED * 200},
                                               format="json")
        assert response.status_code == 400 and list(response.json()["errors"]) == ["subject"], response.content
    assert response.status_code == 400 and list(response.json()["errors"]) == ["subject"]

    response = api_client.post("/api/study-topics", {"name": LENGTHENED * 200}, format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["name"]

    for field, length in (("tags", 900), ("title", 255)):
        upload = SimpleUploadedFile("notes.txt", b"LNG", content_type="text/plain")
        response = api_client.post("/api/documents", {"file": upload, field: LENGTHENED * length}, format="multipart")
        assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.content[:300]
    assert not [p for p in _isolated_media.rglob("*") if p.is_file()]  # no file left behind
    assert list(Question.objects.filter(user=user).values_list("subject", flat=True)) == ["가스", "가스"]


@pytest.mark.parametrize("lost", ["DeadlockDetected", "SerializationFailure"])
def test_a_transaction_that_lost_a_concurrency_race_is_409_retry(api_client, monkeypatch, lost):
    import psycopg.errors
    from django.db import OperationalError

    from study.services import topics

    def loses(**kwargs):
        error = OperationalError("lost a race")
        error.__cause__ = getattr(psycopg.errors, lost)("lost a race")
        raise error

    monkeypatch.setattr(topics, "topic_create", loses)
    response = api_client.post("/api/study-topics", {"name": "연소공학"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"error_code": "conflict",
                               "detail": "A concurrent change got in the way; nothing was saved. Please retry."}
