"""GET /api/documents/{id}/download with `Range`: one byte range (206), unsatisfiable (416), else the whole file."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from studyserver.ranges import UNSATISFIABLE, byte_range

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 400  # 102,400 bytes: more than one 64 KiB block


@pytest.fixture
def document_id(api_client) -> int:
    upload = SimpleUploadedFile("lecture.m4a", CONTENT)
    response = api_client.post("/api/documents", {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def download(client, document_id: int, **headers):
    response = client.get(f"/api/documents/{document_id}/download", **headers)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-0", 0, 0),
    ("bytes=100-199", 100, 199),
    ("bytes=70000-", 70000, len(CONTENT) - 1),  # from a position to the end, across blocks
    ("bytes=-500", len(CONTENT) - 500, len(CONTENT) - 1),  # the last 500 bytes
    ("bytes=102000-999999999", 102000, len(CONTENT) - 1),  # an end beyond the file is the file's end
    ("bytes=-999999", 0, len(CONTENT) - 1),
])
def test_one_range_is_206_with_exactly_those_bytes(api_client, document_id, header, first, last):
    response, body = download(api_client, document_id, HTTP_RANGE=header)
    assert response.status_code == 206
    assert body == CONTENT[first:last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Disposition"].startswith("attachment")  # still a download, never rendered inline
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "header", [None, "bytes=0-1,5-9", "items=0-9", "bytes=9-2", "bytes=abc", "bytes=-", "bytes=\uff10-\uff11"]
)
def test_no_range_or_one_it_ignores_is_the_whole_file(api_client, document_id, header):
    headers = {"HTTP_RANGE": header} if header else {}
    response, body = download(api_client, document_id, **headers)
    assert response.status_code == 200 and body == CONTENT
    assert response["Accept-Ranges"] == "bytes"


def test_if_range_asks_for_the_whole_file_when_it_cannot_be_compared(api_client, document_id):
    response, body = download(api_client, document_id, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"some-etag"')
    assert response.status_code == 200 and body == CONTENT


@pytest.mark.parametrize("header", [f"bytes={len(CONTENT)}-", "bytes=200000-200010", "bytes=-0"])
def test_a_range_beyond_the_end_is_416_with_the_size(api_client, document_id, header):
    response, _ = download(api_client, document_id, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert response.json()["error_code"] == "range_not_satisfiable"


def test_another_users_document_is_404_whatever_the_range(other_client, document_id):
    response, _ = download(other_client, document_id, HTTP_RANGE="bytes=0-9")
    assert response.status_code == 404


def test_no_byte_of_an_empty_file_can_be_asked_for():
    assert byte_range("bytes=0-", 0) == byte_range("bytes=-5", 0) == UNSATISFIABLE
    assert byte_range(None, 0) is None
