"""studyserver.parsers: a lone surrogate escape is refused whatever the body's declared charset; form data that is
not valid in its charset is refused, not stored garbled; unstorable_json."""

import codecs

import pytest

from study.models import Document, StudyTopic

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


# --- form data decoded strictly ---------------------------------------------------------------------------------

BOUNDARY = "studyserver-test-boundary"
URLENCODED = "application/x-www-form-urlencoded"


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart body of (Content-Disposition parameters, content) parts, written byte by byte so that a part can
    carry bytes no client library would encode."""
    body = b""
    for disposition, content in parts:
        body += f"--{BOUNDARY}\r\nContent-Disposition: form-data; ".encode() + disposition + b"\r\n\r\n" + content
        body += b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def topic_part(name: bytes) -> bytes:
    return multipart((b'name="name"', name))


@pytest.mark.parametrize(
    ("body", "content_type", "charset"),
    [
        (b"name=%FF%FEx", URLENCODED, "utf-8"),  # %-escapes that are no UTF-8 (the default charset)
        (b"name=\xff", URLENCODED, "utf-8"),  # a raw byte that is no UTF-8: Django read the body as Latin-1
        (b"name=%EA%B0%80", f"{URLENCODED}; charset=ascii", "ascii"),  # UTF-8 under a declared ASCII
        (b"name=\xea\xb0\x80", f"{URLENCODED}; charset=ascii", "ascii"),
        (topic_part(b"\xff\xfeab"), f"multipart/form-data; boundary={BOUNDARY}", "utf-8"),
        (topic_part("가".encode()), f"multipart/form-data; charset=ascii; boundary={BOUNDARY}", "ascii"),
    ],
)
def test_form_data_not_valid_in_its_charset_is_refused_not_stored_garbled(api_client, user, body, content_type,
                                                                         charset):
    """Django decodes form data with errors="replace": these were topics named "\ufffd\ufffdx", "ÿ", "ê°\x80"… with a
    201, the name the learner meant lost."""
    response = api_client.post("/api/study-topics", body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "invalid"
    assert response.json()["detail"] == f"Form data parse error - its text is not valid {charset}."
    assert not StudyTopic.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"name=%EA%B0%80%EC%8A%A4&study_type=certification", URLENCODED),
        ("name=가스".encode(), URLENCODED),  # raw UTF-8, as some clients send it unescaped
        (b"name=%B0%A1%BD%BA", f"{URLENCODED}; charset=euc-kr"),
        ("name=가스".encode("euc-kr"), f"{URLENCODED}; charset=EUC-KR"),
        (topic_part("가스".encode()), f"multipart/form-data; boundary={BOUNDARY}"),
        (topic_part("가스".encode("euc-kr")), f"multipart/form-data; charset=euc-kr; boundary={BOUNDARY}"),
    ],
)
def test_form_data_is_read_in_its_declared_charset(api_client, user, body, content_type):
    response = api_client.post("/api/study-topics", body, content_type=content_type)
    assert response.status_code == 201, response.content
    assert list(StudyTopic.objects.filter(user=user).values_list("name", flat=True)) == ["가스"]


def test_form_data_keeps_blank_and_repeated_fields(api_client, user):
    """The strict parse keeps what Django's QueryDict kept: a blank value, and a field sent twice (the last wins)."""
    response = api_client.post("/api/study-topics", b"name=first&name=%EA%B0%80&description=", content_type=URLENCODED)
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["description"]) == ("가", "")


def test_form_data_with_too_many_fields_is_refused(api_client, user, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    body = "&".join(f"f{i}=x" for i in range(4)).encode() + b"&name=a"
    response = api_client.post("/api/study-topics", body, content_type=URLENCODED)
    assert response.status_code == 400
    assert response.json()["errors"] == {"non_field_errors": ["Too many fields."]}
    assert not StudyTopic.objects.filter(user=user).exists()


def test_an_upload_refused_for_a_field_after_its_file_leaves_no_file(api_client, user, settings, tmp_path,
                                                                     _isolated_media):
    """The file part is already in a temporary file when the next field fails to decode: Django's parser closes
    (and so removes) it; nothing reaches the store."""
    temp_dir = tmp_path / "uploads-tmp"
    temp_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp_dir)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # stream the file to a temporary file
    body = multipart((b'name="file"; filename="notes.txt"', b"x" * 5000), (b'name="title"', b"\xc0\xafnotes"))
    response = api_client.post("/api/documents", body, content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == "Form data parse error - its text is not valid utf-8."
    assert list(temp_dir.iterdir()) == []
    assert [path for path in _isolated_media.rglob("*") if path.is_file()] == []
    assert not Document.objects.exists()


def test_the_strict_codec_decodes_strictly_whatever_errors_it_is_asked_for():
    """Django's multipart parser asks for errors="replace"; the codec must not honour it. It keeps its charset's
    encoder, and stays no text encoding where the charset is none (DRF refuses a declared `bz2_codec`, which would
    decompress a small body without bound, by that)."""
    strict = codecs.lookup("studyserver-strict-utf-8")
    with pytest.raises(UnicodeDecodeError):
        b"a\xff".decode(strict.name, "replace")
    assert "가".encode(strict.name) == "가".encode()
    assert "가".encode("studyserver-strict-euc-kr") == "가".encode("euc-kr")
    with pytest.raises(LookupError, match="not a text encoding"):
        "".encode("studyserver-strict-bz2-codec")
    with pytest.raises(LookupError):  # (named over and over, it recursed: a RecursionError at ~990 levels)
        codecs.lookup("studyserver-strict-" * 2000 + "utf-8")


def test_a_declared_strict_bytes_codec_is_refused(api_client, user):
    """A client may name the strict codec itself: wrapping a bytes-to-bytes codec must not get it past DRF's check."""
    import bz2

    body = bz2.compress(b"name=" + b"a" * 100_000)
    response = api_client.post("/api/study-topics", body, content_type=f"{URLENCODED}; charset=studyserver-strict-bz2")
    assert response.status_code == 400
    assert "Unsupported charset" in response.json()["detail"]
    assert not StudyTopic.objects.filter(user=user).exists()


def test_no_view_parses_form_data_with_drf_s_own_parsers():
    """Views that list their parsers name them one by one: one left on DRF's class would store garbled text again."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework import parsers

    def views(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from views(pattern.url_patterns)
            elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "cls"):
                yield pattern.callback

    checked = 0
    for view in views(get_resolver().url_patterns):
        parser_classes = view.initkwargs.get("parser_classes", view.cls.parser_classes)
        for lax in (parsers.FormParser, parsers.MultiPartParser):
            assert lax not in parser_classes, (view.cls, view.initkwargs)
        checked += 1
    assert checked > 20  # the walk found the API's views
