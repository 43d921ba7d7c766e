"""Documents in the admin: added through the upload service (stored, hashed, queued for extraction), their file and
extraction read-only afterwards, and "Retry extraction" only for those who may change documents."""

import hashlib
import unicodedata

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from study.models import Document
from study.tests.factories import DocumentFactory, UserFactory

pytestmark = pytest.mark.django_db

TEXT = "LNG의 주성분은 메탄이다.".encode()


def form_errors(response) -> dict:
    return response.context["adminform"].form.errors


def test_a_document_added_in_the_admin_is_stored_and_extracted_as_an_upload(
    admin_client, user, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile("가스 노트.txt", TEXT, content_type="text/plain")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(reverse("admin:study_document_add"),
                                     {"user": user.pk, "file": upload, "title": "", "tags": "가스, 필기"})
    assert response.status_code == 302, form_errors(response)  # was a NOT NULL violation on file_size: a 500
    document = Document.objects.get()
    assert (document.user_id, document.title, document.original_name, document.file_format) == (
        user.pk, "가스 노트.txt", "가스 노트.txt", "txt")
    assert (document.file_size, document.sha256) == (len(TEXT), hashlib.sha256(TEXT).hexdigest())
    assert document.tags == ["가스", "필기"]
    assert len(callbacks) == 1  # the extraction, queued on commit
    assert (document.extract_status, document.extracted_text) == ("done", TEXT.decode())
    assert document.file.read() == TEXT


@pytest.mark.parametrize("name", [".env", "   "])
def test_a_file_the_api_refuses_is_a_form_error(admin_client, user, name, _isolated_media):
    upload = SimpleUploadedFile(name, TEXT, content_type="text/plain")
    response = admin_client.post(reverse("admin:study_document_add"),
                                 {"user": user.pk, "file": upload, "title": "노트", "tags": ""})
    assert response.status_code == 200
    assert "file" in form_errors(response)
    assert not Document.objects.exists()
    assert not any(path.is_file() for path in _isolated_media.rglob("*"))  # nothing stored


def test_a_stale_change_form_leaves_the_file_and_the_extraction_alone(admin_client, user):
    document = DocumentFactory(user=user, extract_status="done", extracted_text="LNG is stored at -162 C.")
    stored = (document.file.name, document.file_size, document.sha256)
    page = admin_client.get(reverse("admin:study_document_change", args=[document.pk]))
    assert set(page.context["adminform"].form.fields) == {"title", "tags"}
    # what the page held before the extraction finished, with another file
    response = admin_client.post(reverse("admin:study_document_change", args=[document.pk]), {
        "title": "새 제목", "tags": "가스", "extract_status": "pending", "extracted_text": "",
        "file": SimpleUploadedFile("other.txt", b"something else"), "original_name": "other.txt",
        "file_format": "pdf"})
    assert response.status_code == 302, form_errors(response)
    document.refresh_from_db()
    assert (document.title, document.tags) == ("새 제목", ["가스"])
    assert (document.extract_status, document.extracted_text) == ("done", "LNG is stored at -162 C.")
    assert (document.file.name, document.file_size, document.sha256) == stored
    assert (document.original_name, document.file_format) == ("note.txt", "txt")


def test_the_change_page_shows_how_often_a_pending_extraction_was_stopped(admin_client, user):
    document = DocumentFactory(user=user, extract_attempts=2)
    page = admin_client.get(reverse("admin:study_document_change", args=[document.pk]))
    assert "extract_attempts" not in page.context["adminform"].form.fields  # shown, not edited
    field = next(f for fieldset in page.context["adminform"] for line in fieldset for f in line
                 if f.is_readonly and f.field["name"] == "extract_attempts")
    assert field.contents() == "2"


def test_tags_are_edited_as_they_are_typed_in_the_api(admin_client, user):
    document = DocumentFactory(user=user)
    document.tags = ["가스", "필기"]
    document.save(update_fields=["tags_text"])
    url = reverse("admin:study_document_change", args=[document.pk])
    assert admin_client.get(url).context["adminform"].form["tags"].value() == "가스, 필기"  # not ",가스,필기,"
    response = admin_client.post(url, {"title": "노트", "tags": "가스,  안전 , ,필기"})
    assert response.status_code == 302, form_errors(response)
    document.refresh_from_db()
    assert document.tags == ["가스", "안전", "필기"]
    assert document.tags_text == ",가스,안전,필기,"  # what the API's tag filter looks for


@pytest.mark.parametrize("url_name", ["admin:study_document_add", "admin:study_document_change"])
@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("tags", ",".join(["태그"] * 400)),  # 1,199 characters: was a DataError on tags_text (1,000), a 500
        ("tags", "\ufb2c" * 900),  # 900 characters as typed, 2,700 once NFC: a DataError too
        ("title", "\ufb2c" * 200),  # 600 once NFC: the add form cut it to 255 characters without a word
    ],
)
def test_texts_longer_than_the_api_takes_are_a_form_error(admin_client, user, url_name, field, text,
                                                          _isolated_media):
    document = DocumentFactory(user=user)
    url = reverse(url_name, args=[document.pk] if url_name.endswith("change") else [])
    data = {"user": user.pk, "title": "노트", "tags": "",
            "file": SimpleUploadedFile("note.txt", TEXT, content_type="text/plain"), field: text}
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert field in form_errors(response)
    assert Document.objects.count() == 1
    assert [path.name for path in _isolated_media.rglob("*") if path.is_file()] == [document.file.name.split("/")[-1]]


@pytest.mark.parametrize("url_name", ["admin:study_document_add", "admin:study_document_change"])
def test_a_title_is_stored_nfc_and_limited_as_stored(admin_client, user, url_name):
    """255 syllables typed on macOS are 765 characters NFD: the API takes them (its limit counts the stored text),
    the admin refused them."""
    document = DocumentFactory(user=user)
    url = reverse(url_name, args=[document.pk] if url_name.endswith("change") else [])
    data = {"user": user.pk, "title": unicodedata.normalize("NFD", "가" * 255), "tags": "",
            "file": SimpleUploadedFile("note.txt", TEXT, content_type="text/plain")}
    response = admin_client.post(url, data)
    assert response.status_code == 302, form_errors(response)
    assert Document.objects.filter(title="가" * 255).count() == 1


def test_a_staff_user_who_may_only_view_documents_cannot_retry_their_extraction(
    client, user, django_capture_on_commit_callbacks
):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_document"))
    client.force_login(viewer)
    failed = DocumentFactory(user=user, extract_status="failed", extract_error="boom")
    changelist = reverse("admin:study_document_changelist")
    assert client.get(changelist).status_code == 200
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(changelist, {"action": "retry_extraction", "_selected_action": [failed.pk]})
    failed.refresh_from_db()
    assert (failed.extract_status, failed.extract_error) == ("failed", "boom")
    assert not callbacks  # nothing queued


@pytest.mark.postgresql
def test_a_document_whose_history_entry_fails_leaves_no_row_and_no_file(admin_client, user, _isolated_media):
    """Django writes the add's history entry after the upload's row, in one transaction: when that entry fails the
    row is rolled back, and the file stored for it is removed too (it was left behind, one more on every retry)."""
    from studyserver.testing import failing, stored_files

    admin_client.raise_request_exception = False
    upload = SimpleUploadedFile("노트.txt", TEXT, content_type="text/plain")
    with failing("django_admin_log"):
        response = admin_client.post(reverse("admin:study_document_add"), {"user": user.pk, "file": upload,
                                                                           "title": "", "tags": ""})
    assert response.status_code == 500
    assert not Document.objects.exists()
    assert stored_files(_isolated_media) == []

    upload.seek(0)
    retry = admin_client.post(reverse("admin:study_document_add"), {"user": user.pk, "file": upload, "title": "",
                                                                    "tags": ""})
    assert retry.status_code == 302
    assert len(stored_files(_isolated_media)) == 1


def test_the_change_page_links_the_file_to_a_download_through_the_admin(admin_client, user):
    """MEDIA_URL is not served (files are private to their owner): the page's link goes through the admin."""
    document = DocumentFactory(user=user, original_name="page.html", content_type="text/html",
                               file=ContentFile(b"<script>alert(1)</script>", name="page.html"))
    page = admin_client.get(reverse("admin:study_document_change", args=[document.pk])).content.decode()
    url = reverse("admin:study_document_download", args=[document.pk])
    assert f'<a href="{url}">page.html</a>' in page
    assert f'href="{document.file.url}"' not in page  # the /media/ link that answered 404

    response = admin_client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<script>alert(1)</script>"
    assert response["Content-Disposition"] == 'attachment; filename="page.html"'
    assert response["Content-Type"] == "application/octet-stream"  # never rendered as the admin's own page
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_admin_download_needs_the_view_permission(client, user):
    document = DocumentFactory(user=user)
    url = reverse("admin:study_document_download", args=[document.pk])
    client.force_login(user)  # not staff
    assert client.get(url).status_code == 302  # to the admin login
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    # an id that does not exist is a 403 too: without the permission, nobody learns which ids exist
    assert client.get(reverse("admin:study_document_download", args=[10**9])).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_document"))
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"LNG is stored at -162 C."


def test_an_admin_download_that_cannot_read_the_file_says_why_on_the_documents_page(admin_client, user):
    from studyserver.tests.test_faults import failing_file_store

    document = DocumentFactory(user=user)
    change = reverse("admin:study_document_change", args=[document.pk])
    url = reverse("admin:study_document_download", args=[document.pk])
    with failing_file_store("open", PermissionError(13, "Permission denied")):
        response = admin_client.get(url, follow=True)
    assert response.redirect_chain == [(change, 302)]
    assert "The file cannot be downloaded: The server&#x27;s database or file store failed" in response.content.decode()

    document.file.delete(save=False)
    response = admin_client.get(url, follow=True)
    assert response.redirect_chain == [(change, 302)]
    assert "The file cannot be downloaded: The stored file is missing." in response.content.decode()
    assert admin_client.get(reverse("admin:study_document_download", args=[10**9])).status_code == 302  # no such id


@pytest.mark.parametrize(
    ("slack", "detail"),
    [
        (1.05, "The upload exceeds the limit of 1000 bytes."),  # Content-Length over the limit × slack: not read
        (100, "The file exceeds the limit of 1000 bytes."),  # let through by the slack: stopped while streaming
    ],
)
def test_an_upload_over_the_limit_in_the_admin_is_413_and_leaves_nothing(admin_client, user, settings, tmp_path,
                                                                       _isolated_media, slack, detail):
    """The upload handler refuses it while Django parses the body, before any admin code runs (the CSRF check reads
    the form first): it raised the API's exception there, which nothing outside DRF answers (a 500)."""
    temp_dir = tmp_path / "uploads-tmp"
    temp_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(temp_dir)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 100  # stream to a temp file
    settings.DOCUMENT_MAX_BYTES, settings.DOCUMENT_LENGTH_SLACK = 1000, slack
    upload = SimpleUploadedFile("big.txt", b"x" * 5000, content_type="text/plain")
    response = admin_client.post(reverse("admin:study_document_add"),
                                 {"user": user.pk, "file": upload, "title": "", "tags": ""})
    assert response.status_code == 413
    assert response.json() == {"error_code": "body_too_large", "detail": detail}
    assert list(temp_dir.iterdir()) == []
    assert not any(path.is_file() for path in _isolated_media.rglob("*"))
    assert not Document.objects.exists()


def test_a_form_over_the_body_limit_in_the_admin_is_413(admin_client, user, settings):
    """DATA_UPLOAD_MAX_MEMORY_SIZE (the form's fields, files aside): Django's own refusal, answered alike."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = admin_client.post(reverse("admin:study_studytopic_add"), {"user": user.pk, "name": "x" * 3000})
    assert response.status_code == 413
    assert response.json() == {"error_code": "body_too_large", "detail": "The request body is too large."}
