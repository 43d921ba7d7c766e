"""/api/study-sessions/{id}/snapshot: PNG by content, one transaction, extract after commit, no orphans."""

import io
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from study.models import Document, SessionAsset
from study.tests import factories as f
from studyserver.testing import failing, stored_files

pytestmark = pytest.mark.django_db



def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (16, 8), 255).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png_bytes()


def snap(client, session_id, content=PNG, name="page.png", **fields):
    return client.post(
        f"/api/study-sessions/{session_id}/snapshot",
        {"file": SimpleUploadedFile(name, content, content_type="image/png"), **fields},
        format="multipart",
    )


def test_snapshot_creates_document_and_answer_asset(
    api_client, user, _isolated_media, django_capture_on_commit_callbacks
):
    session = f.StudySessionFactory(user=user)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = snap(api_client, session.id, sort_order=2)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["asset_type"] == "handwriting_png" and body["role"] == "answer" and body["sort_order"] == 2
    doc = Document.objects.get(pk=body["document_id"])
    assert doc.user == user and doc.file_format == "png" and doc.file_size == len(PNG)
    assert doc.extract_status != "pending"  # the extract ran after commit
    assert len(callbacks) == 1
    assert len(stored_files(_isolated_media)) == 1


def _corrupt_crc(png: bytes) -> bytes:
    """The same PNG with the IHDR chunk's checksum broken."""
    crc_at = 8 + 8 + 13  # signature, IHDR length + type, IHDR data
    crc = zlib.crc32(png[12:crc_at]) ^ 1
    return png[:crc_at] + crc.to_bytes(4, "big") + png[crc_at + 4:]


def _corrupt_data_crc(png: bytes) -> bytes:
    """The same PNG with the image data (IDAT) chunk's checksum broken: its header still opens."""
    at = png.index(b"IDAT")
    crc_at = at + 4 + int.from_bytes(png[at - 4 : at], "big")
    return png[:crc_at] + bytes([png[crc_at] ^ 1]) + png[crc_at + 1 :]


@pytest.mark.parametrize(
    "content",
    [
        PNG[:8] + b"garbage, not a png",
        PNG[: len(PNG) // 2],
        _corrupt_crc(PNG),
        PNG[:8],
        PNG[:-12],
        _corrupt_data_crc(PNG),
    ],
    ids=["signature-then-garbage", "truncated", "bad-checksum", "signature-only", "no-end-chunk", "bad-data-checksum"],
)
def test_a_png_signature_alone_is_not_enough(api_client, user, _isolated_media, content):
    session = f.StudySessionFactory(user=user)
    response = snap(api_client, session.id, content=content)
    assert response.status_code == 400 and response.json()["error_code"] == "unsupported_type"
    assert not Document.objects.exists() and stored_files(_isolated_media) == []


def test_a_png_of_too_many_pixels_is_refused_as_such(api_client, user, _isolated_media):
    """Pillow refuses to open a PNG that declares over ~179 million pixels: a real PNG, said to be none."""
    session = f.StudySessionFactory(user=user)
    buffer = io.BytesIO()
    Image.new("1", (20_000, 10_000)).save(buffer, format="PNG")  # ~25 KB of file
    response = snap(api_client, session.id, buffer.getvalue())
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "invalid_input"
    assert "more pixels" in response.json()["detail"]
    assert not Document.objects.exists()
    assert stored_files(_isolated_media) == []


def test_png_is_judged_by_content_not_name(api_client, user, _isolated_media):
    session = f.StudySessionFactory(user=user)
    response = snap(api_client, session.id, content=b"GIF89a not a png at all", name="fake.png")
    assert response.status_code == 400
    assert response.json()["error_code"] == "unsupported_type"
    assert snap(api_client, session.id, name="drawing.bin").status_code == 201  # a real PNG with any name
    assert len(stored_files(_isolated_media)) == 1


@pytest.mark.parametrize("name", ["snapshot", "page.jpg", "스냅샷 😀.JPEG"])
def test_a_snapshot_is_a_png_document_whatever_its_name(api_client, user, _isolated_media, name):
    """The content was checked to be a PNG: the document says png (format filter, download type), not the name's."""
    session = f.StudySessionFactory(user=user)
    document_id = snap(api_client, session.id, name=name).json()["document_id"]
    doc = Document.objects.get(pk=document_id)
    assert (doc.file_format, doc.content_type, doc.original_name) == ("png", "image/png", name)
    assert doc.file.name.endswith(".png")
    assert [d["id"] for d in api_client.get("/api/documents?format=png").json()["results"]] == [document_id]
    download = api_client.get(f"/api/documents/{document_id}/download")
    assert download["Content-Type"] == "image/png"
    assert b"".join(download.streaming_content) == PNG


def test_empty_and_missing_files(api_client, user, _isolated_media):
    session = f.StudySessionFactory(user=user)
    assert snap(api_client, session.id, content=b"").json()["error_code"] == "empty_file"
    response = api_client.post(f"/api/study-sessions/{session.id}/snapshot", {}, format="multipart")
    assert response.status_code == 400 and response.json()["error_code"] == "invalid_input"
    assert snap(api_client, session.id, sort_order="x").status_code == 400
    assert stored_files(_isolated_media) == []


def test_too_large_snapshot_is_413(api_client, user, settings, _isolated_media):
    settings.DOCUMENT_MAX_BYTES = 30
    session = f.StudySessionFactory(user=user)
    response = snap(api_client, session.id)
    assert response.status_code == 413 and response.json()["error_code"] == "body_too_large"
    assert stored_files(_isolated_media) == []


def test_foreign_session_is_404_and_stores_nothing(api_client, other_user, _isolated_media):
    session = f.StudySessionFactory(user=other_user)
    assert snap(api_client, session.id).status_code == 404
    assert stored_files(_isolated_media) == []


@pytest.mark.postgresql
def test_failed_link_removes_document_and_file(api_client, user, _isolated_media, django_capture_on_commit_callbacks):
    """The asset insert fails inside the transaction: no document row, no stored file, no extract enqueued."""
    session = f.StudySessionFactory(user=user)
    with failing("study_sessionasset", errcode="unique_violation"), django_capture_on_commit_callbacks() as callbacks:
        response = snap(api_client, session.id)
    assert response.status_code == 409
    assert not Document.objects.exists() and not SessionAsset.objects.exists()
    assert stored_files(_isolated_media) == []
    assert callbacks == []


def session_with_two_snapshots(user, *, older: dict, newer: dict):
    """A session whose handwriting snapshots are two documents (made with `older` and `newer`'s fields), linked in
    that order: (session, older, newer)."""
    from study.services.sessions import session_asset_add

    session = f.StudySessionFactory(user=user)
    first, second = f.DocumentFactory(user=user, **older), f.DocumentFactory(user=user, **newer)
    session_asset_add(session=session, document_id=first.id, asset_type="handwriting_png")
    session_asset_add(session=session, document_id=second.id, asset_type="handwriting_png", role="prompt")
    session.refresh_from_db()
    return session, first, second


def test_ocr_text_is_the_newest_snapshots_whatever_order_the_extractions_finish(user):
    from study.services.sessions import sessions_ocr_text_fill

    pending = {"extract_status": "pending", "extracted_text": ""}
    session, older, newer = session_with_two_snapshots(user, older=pending, newer=pending)

    def extraction_ends(document, text: str) -> None:  # what document_extract records, then its fill
        Document.objects.filter(pk=document.pk).update(extract_status="done", extracted_text=text,
                                                       extracted_at=timezone.now())
        sessions_ocr_text_fill(session_ids=[session.pk])
        session.refresh_from_db()

    extraction_ends(newer, "PAGE TWO")
    assert session.ocr_text == "PAGE TWO"
    extraction_ends(older, "PAGE ONE")  # the older snapshot's OCR finishes last
    assert session.ocr_text == "PAGE TWO" and session.user_corrected_text == ""


EXTRACTED = ({"extract_status": "done", "extracted_text": "PAGE ONE"},
             {"extract_status": "done", "extracted_text": "PAGE TWO"})


def ocr_text_of(client, session) -> str:
    return client.get(f"/api/study-sessions/{session.pk}").json()["ocr_text"]


def test_a_deleted_snapshot_gives_the_session_no_ocr_text(api_client, user):
    """A soft-deleted document is hidden from the session's assets: its text is not the session's either (it stayed
    until some other snapshot's extraction finished)."""
    session, older, newer = session_with_two_snapshots(user, older=EXTRACTED[0], newer=EXTRACTED[1])
    assert ocr_text_of(api_client, session) == "PAGE TWO"

    assert api_client.delete(f"/api/documents/{newer.pk}").status_code == 204
    assert ocr_text_of(api_client, session) == "PAGE ONE"  # the newest snapshot left
    assert api_client.delete(f"/api/documents/{older.pk}").status_code == 204
    assert ocr_text_of(api_client, session) == ""  # none left


def test_an_unlinked_snapshot_gives_the_session_no_ocr_text(api_client, user):
    session, older, newer = session_with_two_snapshots(user, older=EXTRACTED[0], newer=EXTRACTED[1])
    assets = {a["document_id"]: a["id"] for a in api_client.get(f"/api/study-sessions/{session.pk}").json()["assets"]}

    assert api_client.delete(f"/api/study-sessions/{session.pk}/assets/{assets[newer.pk]}").status_code == 204
    assert ocr_text_of(api_client, session) == "PAGE ONE"
    assert api_client.delete(f"/api/study-sessions/{session.pk}/assets/{assets[older.pk]}").status_code == 204
    assert ocr_text_of(api_client, session) == ""


def test_an_ocr_text_the_app_wrote_stays_when_a_snapshot_goes(api_client, user):
    """The app's own text (PATCH) is not a snapshot's: deleting one leaves it."""
    session, _older, newer = session_with_two_snapshots(user, older=EXTRACTED[0], newer=EXTRACTED[1])
    assert api_client.patch(f"/api/study-sessions/{session.pk}", {"ocr_text": "앱이 인식한 글"},
                            format="json").status_code == 200

    assert api_client.delete(f"/api/documents/{newer.pk}").status_code == 204

    assert ocr_text_of(api_client, session) == "앱이 인식한 글"


def test_a_snapshot_unlinked_in_the_admin_gives_the_session_no_ocr_text(admin_client, user):
    from django.urls import reverse

    session, older, newer = session_with_two_snapshots(user, older=EXTRACTED[0], newer=EXTRACTED[1])
    newest = SessionAsset.objects.get(document=newer)
    assert admin_client.post(reverse("admin:study_sessionasset_delete", args=[newest.pk]),
                             {"post": "yes"}).status_code == 302
    session.refresh_from_db()
    assert session.ocr_text == "PAGE ONE"

    oldest = SessionAsset.objects.get(document=older)
    assert admin_client.post(reverse("admin:study_sessionasset_changelist"),
                             {"action": "delete_selected", "_selected_action": [oldest.pk], "post": "yes"}
                             ).status_code == 302
    session.refresh_from_db()
    assert session.ocr_text == ""


def sessions_with_a_snapshot(user, n: int) -> list[SessionAsset]:
    """n sessions, each with one extracted snapshot of a text of its own (its ocr_text); their links."""
    assets = []
    for i in range(n):
        session, _older, newer = session_with_two_snapshots(
            user, older={"extract_status": "pending", "extracted_text": ""},
            newer={"extract_status": "done", "extracted_text": f"PAGE {i}"})
        assert session.ocr_text == f"PAGE {i}"
        assets.append(SessionAsset.objects.get(document=newer))
    return assets


def test_forgetting_many_snapshots_texts_takes_one_read_and_one_update(user, django_assert_num_queries):
    from study.models import StudySession
    from study.services.sessions import sessions_ocr_text_forget

    assets = sessions_with_a_snapshot(user, 12)
    SessionAsset.objects.filter(pk__in=[asset.pk for asset in assets]).delete()
    with django_assert_num_queries(2):
        assert sessions_ocr_text_forget(assets=assets) == 12
    assert set(StudySession.objects.values_list("ocr_text", flat=True)) == {""}


def test_deleting_many_snapshot_links_in_the_admin_takes_the_same_queries_for_2_as_for_20(admin_client, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from study.models import StudySession

    counts = []
    for n in (1, 2, 20):  # (the first warms the content-type cache)
        assets = sessions_with_a_snapshot(user, n)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.post(reverse("admin:study_sessionasset_changelist"), {
                "action": "delete_selected", "post": "yes", "_selected_action": [asset.pk for asset in assets]})
        assert response.status_code == 302
        counts.append(len(queries))
        session_ids = [asset.session_id for asset in assets]
        assert set(StudySession.objects.filter(pk__in=session_ids).values_list("ocr_text", flat=True)) == {""}
    assert counts[1] == counts[2], counts
