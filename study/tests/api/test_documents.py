"""/api/documents: streamed upload rules, atomic storage, extract wiring, list filters, download, soft delete."""

import hashlib
import unicodedata
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from study.models import Document, TopicDocument
from study.services.documents import document_upload
from study.tests import factories as f
from studyserver.testing import failing, stored_files

pytestmark = pytest.mark.django_db

CONTENT = "LNG는 영하 162도에서 액화된다.\n".encode()


def upload(client, name="노트.txt", content=CONTENT, **fields):
    return client.post("/api/documents", {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def test_upload_stores_file_and_row(api_client, user, _isolated_media):
    response = upload(api_client, title="가스 노트", tags="가스, 안전,,가스")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "가스 노트"
    assert body["file_format"] == "txt"
    assert body["file_size"] == len(CONTENT)
    assert body["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert body["tags"] == ["가스", "안전"]
    assert body["download_url"] == f"http://testserver/api/documents/{body['id']}/download"
    assert set(body) == {"id", "title", "file_format", "file_size", "sha256", "tags", "extract_status",
                         "extract_error", "created_at", "download_url"}  # fmt: skip
    doc = Document.objects.get(pk=body["id"])
    assert doc.user == user and doc.original_name == "노트.txt" and doc.content_type == "text/plain"
    files = stored_files(_isolated_media)
    assert len(files) == 1 and files[0].read_bytes() == CONTENT
    assert doc.file.name == files[0].relative_to(_isolated_media).as_posix()
    assert "노트" not in doc.file.name  # stored under a unique generated name


def test_title_defaults_to_base_name_and_path_is_stripped(api_client, _isolated_media):
    for raw, expected in (("../../etc/passwd.TXT", "passwd.TXT"), ("C:\\Users\\me\\시험.PDF", "시험.PDF")):
        body = upload(api_client, name=raw).json()
        assert body["title"] == expected
        assert body["file_format"] == expected.rsplit(".", 1)[1].lower()
    for path in stored_files(_isolated_media):
        assert path.resolve().is_relative_to(_isolated_media.resolve())


def test_traversal_name_in_raw_multipart_is_reduced_to_base_name(api_client, _isolated_media):
    response = raw_multipart(api_client, "/api/documents", "..\\..\\../../evil.txt")
    assert response.status_code == 201
    assert response.json()["title"] == "evil.txt"
    assert len(stored_files(_isolated_media)) == 1


def test_same_name_twice_gets_two_files(api_client, _isolated_media):
    upload(api_client)
    upload(api_client)
    assert len(stored_files(_isolated_media)) == 2


def raw_multipart(client, url, filename: str, content: bytes = CONTENT):
    """POST a hand-made multipart body (test clients refuse to send names such as '..')."""
    boundary = "----a-boundary-7d1"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return client.generic("POST", url, body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("name", [".env", "..", "", ".", "dir/", "dir\\", "../.ssh", "   ",
                                  "\u3164", "\u115f\u1160.txt", "\uffa0\uffa0", "\u3164.env"])  # Hangul fillers
def test_dot_files_and_empty_names_are_refused(api_client, name, _isolated_media):
    response = raw_multipart(api_client, "/api/documents", name)
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_input"
    assert stored_files(_isolated_media) == []


def test_missing_file_is_invalid_input(api_client):
    response = api_client.post("/api/documents", {"title": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_input"


def test_empty_file_is_refused(api_client, _isolated_media):
    response = upload(api_client, content=b"")
    assert response.status_code == 400
    assert response.json()["error_code"] == "empty_file"
    assert stored_files(_isolated_media) == []
    assert not Document.objects.exists()


def test_content_length_precheck_refuses_before_reading(api_client, settings, _isolated_media):
    settings.DOCUMENT_MAX_BYTES = 1000
    response = upload(api_client, content=b"x" * 2000)
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"
    # the precheck's words: the streaming limit (which would also refuse it) says "The file exceeds …"
    assert response.json()["detail"] == "The upload exceeds the limit of 1000 bytes."
    assert stored_files(_isolated_media) == []


def test_streaming_limit_refuses_and_leaves_no_temp_file(api_client, settings, tmp_path, _isolated_media):
    temp_dir = tmp_path / "uploads-tmp"
    temp_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp_dir)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100  # stream to a temp file
    settings.DOCUMENT_MAX_BYTES = 5000
    settings.DOCUMENT_LENGTH_SLACK = 100  # let the Content-Length precheck pass: the streaming check must catch it
    response = upload(api_client, content=b"y" * 200_000)
    assert response.status_code == 413
    assert response.json()["error_code"] == "body_too_large"
    assert response.json()["detail"] == "The file exceeds the limit of 5000 bytes."
    assert list(temp_dir.iterdir()) == []
    assert stored_files(_isolated_media) == []
    assert not Document.objects.exists()


def test_large_upload_through_temp_file_is_stored_whole(api_client, settings, tmp_path, _isolated_media):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100
    content = bytes(range(256)) * 400
    body = upload(api_client, name="scan.pdf", content=content).json()
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert stored_files(_isolated_media)[0].read_bytes() == content


def test_upload_linked_to_topic(api_client, user):
    topic = f.StudyTopicFactory(user=user)
    body = upload(api_client, study_topic_id=topic.id).json()
    assert TopicDocument.objects.filter(topic=topic, document_id=body["id"], user=user).exists()


def test_empty_optional_form_fields_are_left_out(api_client, user, _isolated_media):
    # Form libraries send an unset field as an empty value; in a form that is "no topic", not a bad integer.
    response = upload(api_client, study_topic_id="", title="", tags="")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["title"] == "노트.txt" and body["tags"] == []
    assert not TopicDocument.objects.filter(document_id=body["id"]).exists()
    assert upload(api_client, study_topic_id="x").status_code == 400  # a value that is there is still checked


@pytest.mark.parametrize("which", ["foreign", "deleted", "missing"])
def test_upload_with_bad_topic_is_404_and_leaves_nothing(api_client, user, other_user, which, _isolated_media):
    topic_id = {
        "foreign": lambda: f.StudyTopicFactory(user=other_user).id,
        "deleted": lambda: f.StudyTopicFactory(user=user, deleted_at=timezone.now()).id,
        "missing": lambda: 987654321,
    }[which]()
    response = upload(api_client, study_topic_id=topic_id)
    assert response.status_code == 404
    assert stored_files(_isolated_media) == []
    assert not Document.objects.exists()


@pytest.mark.postgresql
def test_database_failure_mid_transaction_removes_the_stored_file(api_client, user, _isolated_media):
    """The link insert fails inside the transaction (a trigger raises a FK violation): no orphan file."""
    topic = f.StudyTopicFactory(user=user)
    with failing("study_topicdocument", errcode="foreign_key_violation"):
        response = upload(api_client, study_topic_id=topic.id)
    assert response.status_code == 404
    assert stored_files(_isolated_media) == []
    assert not Document.objects.exists()


def test_extract_is_enqueued_only_after_commit(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        body = upload(api_client).json()
    assert Document.objects.get(pk=body["id"]).extract_status == "pending"
    assert len(callbacks) == 1
    callbacks[0]()
    assert Document.objects.get(pk=body["id"]).extract_status != "pending"


def test_extract_runs_on_commit(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = upload(api_client).json()
    assert Document.objects.get(pk=body["id"]).extract_status != "pending"


def test_refused_upload_enqueues_nothing(api_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        upload(api_client, study_topic_id=987654321)
    assert callbacks == []


def test_list_filters(api_client, user, other_user):
    topic = f.StudyTopicFactory(user=user)
    pdf = f.DocumentFactory(user=user, title="가스 법규 요약", file_format="pdf", tags_text=",법규,요약,")
    txt = f.DocumentFactory(user=user, title="Notes", file_format="txt", tags_text=",법규집,")
    f.TopicDocumentFactory(topic=topic, document=txt)
    f.DocumentFactory(user=user, deleted_at=timezone.now(), file_format="pdf")
    f.DocumentFactory(user=other_user, file_format="pdf", tags_text=",법규,")

    def ids(query):
        response = api_client.get(f"/api/documents{query}")
        assert response.status_code == 200, response.content
        return [d["id"] for d in response.json()["results"]]

    assert ids("") == [txt.id, pdf.id]
    assert ids("?format=PDF") == [pdf.id]
    assert ids("?tag=법규") == [pdf.id]  # a whole tag, not a prefix
    assert ids("?tag=법규,요약") == []  # tags hold no comma: not two adjacent tags
    assert ids(f"?study_topic_id={topic.id}") == [txt.id]
    assert ids("?q=법규") == [pdf.id]
    assert ids("?q=notes") == [txt.id]
    foreign_topic = f.TopicDocumentFactory(topic=f.StudyTopicFactory(user=other_user)).topic
    assert ids(f"?study_topic_id={foreign_topic.id}") == []
    assert api_client.get("/api/documents?study_topic_id=abc").status_code == 400


def test_titles_tags_and_searches_are_nfc_like_file_names(api_client):
    """Text from macOS/iOS may arrive decomposed (NFD): stored NFC like the file name, searched either way."""
    nfd, nfc = unicodedata.normalize("NFD", "가스 법규"), "가스 법규"
    assert nfd != nfc
    body = upload(api_client, name=f"{nfd}.txt", title=nfd, tags=f"{nfd},안전").json()
    assert body["title"] == nfc and body["tags"] == [nfc, "안전"]
    for query in ({"q": "가스"}, {"q": unicodedata.normalize("NFD", "가스")}, {"tag": nfc}, {"tag": nfd}):
        assert [d["id"] for d in api_client.get("/api/documents", query).json()["results"]] == [body["id"]], query


def test_tag_filter_is_case_sensitive_on_every_database(api_client, user):
    """Tags are stored as typed ("Exam" and "exam" are two tags); SQLite's LIKE used to ignore the case."""
    upper = f.DocumentFactory(user=user, tags_text=",Exam,")
    lower = f.DocumentFactory(user=user, tags_text=",exam,")
    for tag, expected in (("Exam", [upper.id]), ("exam", [lower.id]), ("EXAM", []), ("%", []), ("_xam", [])):
        response = api_client.get("/api/documents", {"tag": tag})
        assert [d["id"] for d in response.json()["results"]] == expected, tag


@pytest.mark.parametrize("rows", [1, 50])
def test_list_query_count_is_constant(api_client, user, rows, django_assert_max_num_queries):
    f.DocumentFactory.create_batch(rows, user=user)
    with django_assert_max_num_queries(3):
        assert api_client.get("/api/documents?limit=200").json()["count"] == rows


def test_detail_adds_extracted_text_and_other_users_get_404(api_client, other_client, user):
    doc = f.DocumentFactory(user=user, extracted_text="LNG 본문")
    body = api_client.get(f"/api/documents/{doc.id}/").json()
    assert body["extracted_text"] == "LNG 본문"
    assert other_client.get(f"/api/documents/{doc.id}").status_code == 404
    assert other_client.get(f"/api/documents/{doc.id}/download").status_code == 404
    assert other_client.delete(f"/api/documents/{doc.id}").status_code == 404


def test_soft_delete(api_client, user):
    doc = f.DocumentFactory(user=user)
    assert api_client.delete(f"/api/documents/{doc.id}").status_code == 204
    doc.refresh_from_db()
    assert doc.deleted_at is not None
    assert Path(doc.file.path).exists()  # soft: the file stays
    assert api_client.get(f"/api/documents/{doc.id}").status_code == 404
    assert api_client.get(f"/api/documents/{doc.id}/download").status_code == 404
    assert api_client.get("/api/documents").json()["count"] == 0


def _download(client, doc_id):
    response = client.get(f"/api/documents/{doc_id}/download")
    assert response.status_code == 200
    return response, b"".join(response.streaming_content)


@pytest.mark.parametrize(
    ("name", "expected_type"),
    [
        ("a.txt", "text/plain"),  # no charset: notes come in UTF-8, UTF-16, CP949 …
        ("a.pdf", "application/pdf"),
        ("a.png", "image/png"),
        ("a.mov", "video/quicktime"),  # an iPhone's recording
        ("a.webm", "video/webm"),
        ("a.ogg", "audio/ogg"),
        ("a.aac", "audio/aac"),
        ("a.html", "application/octet-stream"),
        ("a.svg", "application/octet-stream"),
        ("a.js", "application/octet-stream"),
        ("noext", "application/octet-stream"),
        # compressed: gzip, not the type of what it holds (notes.txt.gz was stored and served as text/plain)
        ("notes.txt.gz", "application/octet-stream"),
        ("기출.pdf.gz", "application/octet-stream"),
        ("notes.md.bz2", "application/octet-stream"),
    ],
)
def test_download_is_a_safe_attachment(api_client, name, expected_type):
    body = upload(api_client, name=name, content=b"<script>alert(1)</script>").json()
    response, content = _download(api_client, body["id"])
    assert content == b"<script>alert(1)</script>"
    assert response["Content-Type"] == expected_type
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("name", "stored_type"), [("notes.txt.gz", "application/gzip"),
                                                    ("notes.md.bz2", "application/x-bzip2"),
                                                    ("a.tar.xz", "application/x-xz")])
def test_a_compressed_file_is_stored_as_its_compression_not_its_inner_type(api_client, name, stored_type):
    from study.models import Document

    body = upload(api_client, name=name, content=b"\x1f\x8b compressed").json()
    assert Document.objects.get(pk=body["id"]).content_type == stored_type


def test_the_schema_admits_every_content_type_the_download_sends(api_client):
    """The file goes out with its own (safe) type, not always octet-stream: a client checking it against the schema
    must not reject a text or PDF download."""
    responses = api_client.get("/api/schema", {"format": "json"}).json()["paths"]["/api/documents/{id}/download/"]
    for status in ("200", "206"):
        declared = list(responses["get"]["responses"][status]["content"])
        for sent in ("text/plain", "application/pdf", "image/png", "audio/mpeg", "video/quicktime",
                     "application/octet-stream"):
            kind = sent.split("/")[0]
            assert {sent, f"{kind}/*", "*/*"} & set(declared), (status, sent, declared)


def test_download_with_unicode_name(api_client):
    body = upload(api_client, name="가스 요약.txt").json()
    response, _ = _download(api_client, body["id"])
    assert "filename*=utf-8''" in response["Content-Disposition"]


@pytest.mark.parametrize("accept", ["application/pdf", "audio/*", "image/png, */*;q=0.1", "*/*"])
def test_download_ignores_accept(api_client, user, accept):
    """A client asking for the file's own type gets the file (it was a 406: no JSON renderer matched)."""
    body = upload(api_client, name="기출.pdf", content=b"%PDF-1.4 not really").json()
    response = api_client.get(f"/api/documents/{body['id']}/download", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == b"%PDF-1.4 not really"
    missing = api_client.get("/api/documents/987654321/download", HTTP_ACCEPT=accept)
    assert missing.status_code == 404 and missing.json()["error_code"] == "not_found"


def test_download_of_missing_file_is_404(api_client, user):
    doc = f.DocumentFactory(user=user)
    Path(doc.file.path).unlink()
    assert api_client.get(f"/api/documents/{doc.id}/download").status_code == 404


def test_a_body_above_the_slack_is_refused_unread_and_the_limit_itself_is_allowed(
    api_client, settings, _isolated_media
):
    """DOCUMENT_MAX_BYTES is what a file may have; the Content-Length precheck allows 5 % more for the multipart
    envelope and refuses anything beyond before reading it."""
    settings.DOCUMENT_MAX_BYTES = 10_000
    refused_unread = upload(api_client, content=b"x" * 10_600)
    assert refused_unread.status_code == 413
    assert refused_unread.json()["detail"] == "The upload exceeds the limit of 10000 bytes."
    one_too_many = upload(api_client, content=b"x" * 10_001)
    assert one_too_many.status_code == 413
    assert one_too_many.json()["detail"] == "The file exceeds the limit of 10000 bytes."
    assert stored_files(_isolated_media) == []
    assert upload(api_client, content=b"x" * 10_000).status_code == 201


def test_the_streaming_limit_counts_each_file_of_a_request_on_its_own(api_client, settings, _isolated_media):
    settings.DOCUMENT_MAX_BYTES = 10_000
    settings.DOCUMENT_LENGTH_SLACK = 3  # the body of both files passes the Content-Length precheck
    response = api_client.post(
        "/api/documents",
        {"file": SimpleUploadedFile("a.txt", b"a" * 6000), "attachment": SimpleUploadedFile("b.txt", b"b" * 6000)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["file_size"] == 6000


def test_the_upload_service_checks_size_and_name_whatever_parsed_the_request(user, settings, _isolated_media):
    """document_upload keeps its own rules (the streaming handler and Django's parser check before it over HTTP)."""
    from studyserver.errors import BodyTooLarge

    settings.DOCUMENT_MAX_BYTES = 10
    with pytest.raises(BodyTooLarge):
        document_upload(user=user, upload=SimpleUploadedFile("a.txt", b"x" * 11))
    assert stored_files(_isolated_media) == []
    document = document_upload(user=user, upload=SimpleUploadedFile("C:\\notes\\..\\a.txt", b"x" * 10))
    assert (document.original_name, document.file_size) == ("a.txt", 10)
    assert len(stored_files(_isolated_media)) == 1


def test_the_topic_filter_of_a_deleted_topic_lists_nothing(api_client, user):
    from study.services.topics import topic_delete

    topic = f.StudyTopicFactory(user=user)
    f.TopicDocumentFactory(topic=topic)
    topic_delete(topic=topic)
    response = api_client.get("/api/documents", {"study_topic_id": topic.id})
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_download_says_nosniff_itself(api_client, settings):
    """Whatever the security middleware is set to: a browser must not sniff an uploaded file into a page."""
    settings.SECURE_CONTENT_TYPE_NOSNIFF = False
    body = upload(api_client, name="a.txt", content=b"<html><script>alert(1)</script>").json()
    response, _ = _download(api_client, body["id"])
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment")


def test_a_format_is_letters_and_digits_or_none(api_client, _isolated_media):
    body = upload(api_client, name="notes.tar-gz").json()
    assert body["file_format"] == ""
    assert "." not in stored_files(_isolated_media)[0].name  # no extension made of the client's odd characters


def test_a_name_that_nfc_lengthens_past_255_characters_is_cut_keeping_its_extension(api_client, _isolated_media):
    """Django cuts a file name to 255 characters; NFC can lengthen it again (U+FB2C is three characters)."""
    name = "\ufb2c" * 86 + ".txt"  # 90 characters as sent, 262 in NFC
    assert len(unicodedata.normalize("NFC", name)) == 262
    response = upload(api_client, name=name)
    assert response.status_code == 201, response.content
    document = Document.objects.get(pk=response.json()["id"])
    assert len(document.original_name) == 255 and document.original_name.endswith(".txt")
    assert document.file_format == "txt"
