"""Document text extraction: text encodings, PDF, OCR (real Tesseract), skipped/failed paths, claiming, and
the slow part run with no transaction or row lock open."""

import codecs
import io
import struct
import threading
import unicodedata
import zlib
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from boto3.exceptions import RetriesExceededError as Boto3RetriesExceeded
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from django.core.files.base import ContentFile
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from PIL import ExifTags, Image, ImageDraw, ImageFile, ImageFont
from pypdf import PageObject, PdfWriter
from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceeded

from study.extract.text import decode_text
from study.models import Document, StudySession
from study.services import extraction
from study.services.documents import document_delete
from study.services.extraction import (
    document_extract,
    documents_pending_resend,
    documents_reset_for_retry,
    extract_lock_key,
)
from study.store import StorageUnavailable
from study.tasks import extract_document, extracts_sweep
from study.tests.factories import DocumentFactory, SessionAssetFactory
from studyserver.locks import advisory_lock_key
from studyserver.testing import (
    advisory_lock_holders,
    backend_in_transaction,
    counting_updates,
    hold_until_another_waits,
    run_concurrently,
    wait_for,
    worker_database_url,
)

CJK_FONTS = sorted(Path("/usr/share/fonts").rglob("NotoSansCJK-Regular.ttc"))


def make_document(user, data: bytes, name: str, fmt: str, content_type: str = "") -> Document:
    return DocumentFactory(
        user=user, original_name=name, file_format=fmt, content_type=content_type,
        file=ContentFile(data, name=name), file_size=len(data),
    )


def render_png(lines: list[str], *, transparent: bool = False) -> bytes:
    """A PNG with dark text, like a handwriting snapshot (optionally on a transparent canvas)."""
    font = ImageFont.truetype(str(CJK_FONTS[0]), 48, index=1)  # index 1: the Korean face
    background = (0, 0, 0, 0) if transparent else (255, 255, 255, 255)
    image = Image.new("RGBA", (900, 110 * len(lines) + 40), background)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 30 + 100 * i), line, font=font, fill=(20, 20, 20, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_pdf(*page_texts: str) -> bytes:
    """A PDF with one page per text, each with a real text layer (Helvetica), xref offsets computed."""
    return pdf_of_streams(*(f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1") for text in page_texts))


def pdf_of_streams(*streams: bytes, font: bytes = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
                   extra: tuple[bytes, ...] = ()) -> bytes:
    """A PDF with one page per content stream, its font F1 (object 3) and `extra` objects numbered after them."""
    page_ids = [4 + 2 * i for i in range(len(streams))]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + " ".join(f"{n} 0 R" for n in page_ids).encode()
        + b"] /Count " + str(len(streams)).encode() + b" >>",
        font,
    ]
    for page_id, stream in zip(page_ids, streams, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " + str(page_id + 1).encode()
            + b" 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
        )
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    objects.extend(extra)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def blank_png(width: int, height: int) -> bytes:
    """A blank 1-bit PNG: a few KB of file for any number of pixels."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
class TestTextAndPdf:
    def test_utf8_text_is_extracted(self, user):
        doc = make_document(user, "LNG는 영하 162도에서 액화된다.\r\n두 번째 줄  \n".encode(), "n.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extract_status == "done"
        assert doc.extracted_text == "LNG는 영하 162도에서 액화된다.\n두 번째 줄"
        assert doc.extract_error == ""
        assert doc.extracted_at is not None

    def test_a_decomposed_text_is_stored_composed(self, user):
        """A note saved on macOS (NFD Hangul) matched no search term, which are composed, and gave no passage."""
        text = "부취제 TBM은 양파 썩는 냄새가 난다."
        doc = make_document(user, unicodedata.normalize("NFD", text).encode(), "k4.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == text

    def test_cp949_korean_file_is_decoded(self, user):
        doc = make_document(user, "# 가스 안전\n메탄은 공기보다 가볍다.".encode("cp949"), "legacy.md", "md")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == "# 가스 안전\n메탄은 공기보다 가볍다."

    def test_decode_text_fallbacks(self):
        assert decode_text("한글".encode("euc-kr")) == ("한글", ())
        assert decode_text("\ufeffbom".encode()) == ("bom", ())
        assert decode_text("utf16 한글".encode("utf-16")) == ("utf16 한글", ())

    @pytest.mark.parametrize(("text", "encoding"), [
        # Japanese notes from Windows (JLPT material): read as CP949 or UTF-8 with replacement, they were mojibake
        ("日本語の漢字を勉強します。メタンの爆発範囲は5から15パーセントです。", "shift_jis"),
        ("日本語の漢字を勉強します。メタンの爆発範囲は5から15パーセントです。", "euc_jp"),
        ("漢字検定の問題集", "shift_jis"),  # short: most Shift-JIS pairs are CP949 syllables too
        ("私は毎日日本語を勉強しています。", "euc_jp"),  # short: EUC-JP's kana are CP949's jamo
        # UTF-16 without a BOM whose Korean puts zero bytes on both sides (가 is U+AC00)
        ("가스 용기는 가스 안전 기준에 따라 도색한다. LNG의 주성분은 메탄이다.", "utf-16-le"),
        ("가스 용기는 가스 안전 기준에 따라 도색한다.", "utf-16-be"),
        ("日本語の漢字を勉強します。", "utf-16-le"),
        # Korean, short, and with the rare syllables only CP949 has: still Korean
        ("LNG의 주성분은 메탄", "euc-kr"),
        ("똠방각하 햏햏 뷁 가스 안전 관리 기준에 따라 용기를 도색한다", "cp949"),
        ("Café crème brûlée, naïve façade", "cp1252"),
        # standalone jamo, as Korean notes and exam questions have them: still Korean
        ("오늘 가스기사 필기 공부 ㅋㅋㅋ 너무 어렵다 ㅠㅠ 내일 또 해야지 ㅎㅎ", "cp949"),
        ("다음 중 가연성 가스는? ㄱ. 메탄 ㄴ. 프로판 ㄷ. 질소 ㄹ. 아르곤 ① ㄱ, ㄴ ② ㄱ, ㄷ ③ ㄴ, ㄹ", "cp949"),
    ])
    def test_legacy_encodings_are_read_as_written(self, text, encoding):
        assert decode_text(text.encode(encoding)) == (text, ())

    def test_a_damaged_legacy_text_is_read_with_its_bad_bytes_marked(self, user):
        """One stray byte at the end of an EUC-KR file made the whole document mojibake (UTF-8 with replacement)."""
        text = "가스 용기는 가스 안전 기준에 따라 도색한다. LNG의 주성분은 메탄이다."
        doc = make_document(user, text.encode("euc-kr") + b"\xb0", "notes.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text.startswith(text)
        assert "1 undecodable byte sequence(s) of this CP949 text shown as \ufffd" in doc.extract_error

    def test_a_text_with_a_bom_and_a_bad_byte_is_read_with_it_marked(self):
        text, notes = decode_text(codecs.BOM_UTF8 + "가스 안전 관리 기준에 따라 용기를 도색한다".encode() + b"\xff")
        assert text == "가스 안전 관리 기준에 따라 용기를 도색한다\ufffd"
        assert notes == ("1 undecodable byte sequence(s) of this UTF-8-SIG text shown as \ufffd",)

    @pytest.mark.parametrize("text", [
        "가스 용기는 가스 안전 기준에 따라 도색한다. LNG의 주성분은 메탄이다.",
        "日本語の漢字を勉強します。メタンの爆発範囲は5から15パーセントです。",
        "Café crème brûlée: the naïve façade of a résumé.",
        "LNG 메탄 CH4 methane boiling point -162C",
        "메탄메탄메탄 abc",
        "Ärger über Öl: Straße",
    ])
    def test_a_utf8_text_with_a_bad_byte_is_read_as_utf8_with_it_marked(self, user, text):
        """A UTF-8 note cut in the middle of a character went on to the legacy encodings: mojibake throughout."""
        cut = text.encode() + "가".encode()[:2]
        note = "1 undecodable byte sequence(s) of this UTF-8 text shown as \ufffd"
        assert decode_text(cut) == (text + "\ufffd", (note,))
        flipped = text[:5].encode() + b"\xff" + text[5:].encode()
        assert decode_text(flipped) == (text[:5] + "\ufffd" + text[5:], (note,))
        doc = make_document(user, cut, "notes.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == text + "\ufffd"
        assert note in doc.extract_error

    @pytest.mark.parametrize("data", [bytes(range(256)) * 4, b"PK\x03\x04" + bytes(range(200)), b"abc\xff\xff",
                                      codecs.BOM_UTF8 + bytes(range(128, 256)) * 4])
    def test_bytes_that_are_no_text_fail_instead_of_becoming_mojibake(self, user, data):
        doc = make_document(user, data, "notes.txt", "txt")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error.startswith("not text in an encoding this server reads (UTF-8, UTF-16, CP949")
        assert doc.extracted_text == ""

    def test_nul_bytes_do_not_break_postgres(self, user):
        doc = make_document(user, b"before\x00after", "nul.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == "beforeafter"

    def test_a_stored_file_that_cannot_be_read_fails_without_showing_its_path(self, user, settings, caplog):
        """extract_error is an API field: "could not read the file: [Errno 21] Is a directory: '/srv/…/media/…'"
        showed where the media live and how they are laid out."""
        from pathlib import Path

        doc = make_document(user, "노트".encode(), "notes.txt", "txt")
        path = Path(doc.file.path)
        path.unlink()
        path.mkdir()  # reading it raises IsADirectoryError with the path
        try:
            assert document_extract(document_id=doc.id) == "failed"
        finally:
            path.rmdir()
        doc.refresh_from_db()
        assert doc.extract_error == "could not read the stored file: Is a directory"
        assert str(path) in caplog.text  # the operator still learns which file

    def test_pdf_text_layer(self, user):
        doc = make_document(user, make_pdf("Methane is the main component of LNG"), "book.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert "Methane is the main component of LNG" in doc.extracted_text

    def test_broken_pdf_fails_with_reason(self, user):
        doc = make_document(user, b"%PDF-1.4\nthis is not a pdf at all", "bad.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_status == "failed"
        assert doc.extract_error.startswith("unreadable PDF")

    def test_pdf_named_file_with_other_bytes_fails(self, user):
        doc = make_document(user, b"plain words", "fake.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert "not a valid pdf" in doc.extract_error

    def test_unsupported_format_is_skipped(self, user):
        doc = make_document(user, b"ID3\x03\x00fake mp3", "talk.mp3", "mp3", "audio/mpeg")
        assert document_extract(document_id=doc.id) == "skipped"
        doc.refresh_from_db()
        assert "mp3" in doc.extract_error

    def test_missing_stored_file_fails(self, user):
        doc = make_document(user, b"text", "gone.txt", "txt")
        doc.file.storage.delete(doc.file.name)
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error == "the stored file is missing"


@pytest.mark.django_db
class TestOcr:
    def test_png_is_ocrd_in_korean_and_latin(self, user):
        doc = make_document(user, render_png(["LNG methane 162", "메탄 가스 저장"]), "page.png", "png", "image/png")
        assert extract_document.apply(args=[doc.id]).get() == "done"
        doc.refresh_from_db()
        assert doc.extract_status == "done"
        for word in ("LNG", "methane", "162", "메탄", "가스", "저장"):
            assert word in doc.extracted_text

    def test_a_photo_is_read_the_way_its_exif_orientation_shows_it(self, user):
        """A phone stores a portrait photo's pixels sideways and says so in EXIF (Orientation 6: turn 90° clockwise
        to show): it was read sideways, into nonsense, and the document ended `done` with it."""
        upright = Image.open(io.BytesIO(render_png(["LNG methane 162"]))).convert("RGB")
        stored = upright.rotate(90, expand=True)  # as the sensor read it
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6
        photo = io.BytesIO()
        stored.save(photo, format="JPEG", quality=95, exif=exif)
        doc = make_document(user, photo.getvalue(), "photo.jpg", "jpg", "image/jpeg")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        for word in ("LNG", "methane", "162"):
            assert word in doc.extracted_text

    def test_handwriting_snapshot_fills_session_ocr_text_only(self, user):
        data = render_png(["hello world", "안녕 하세요"], transparent=True)
        asset = SessionAssetFactory(
            session__user=user, session__user_corrected_text="내가 고친 글",
            document=make_document(user, data, "snap.png", "png", "image/png"),
        )
        other = SessionAssetFactory(session__user=user, asset_type="reference", role=None, document=asset.document)
        assert document_extract(document_id=asset.document_id) == "done"
        session = StudySession.objects.get(pk=asset.session_id)
        assert "hello world" in session.ocr_text
        assert "안녕" in session.ocr_text
        assert session.user_corrected_text == "내가 고친 글"
        # only handwriting_png links receive OCR text
        assert StudySession.objects.get(pk=other.session_id).ocr_text == ""

    def test_missing_tesseract_marks_skipped_with_reason(self, user, settings):
        settings.TESSERACT_CMD = "/nonexistent/bin/tesseract"
        doc = make_document(user, render_png(["LNG"]), "page.png", "png", "image/png")
        assert document_extract(document_id=doc.id) == "skipped"
        doc.refresh_from_db()
        assert doc.extract_status == "skipped"
        assert "tesseract not found" in doc.extract_error
        # once Tesseract is back, a retry extracts it
        settings.TESSERACT_CMD = "tesseract"
        assert documents_reset_for_retry(document_ids=[doc.id]) == 1
        assert document_extract(document_id=doc.id) == "done"

    def test_missing_language_data_is_skipped(self, user, settings):
        settings.OCR_LANGUAGES = "klingon"
        doc = make_document(user, render_png(["LNG"]), "page.png", "png", "image/png")
        assert document_extract(document_id=doc.id) == "skipped"
        doc.refresh_from_db()
        assert "no language data" in doc.extract_error

    def test_corrupt_png_fails(self, user):
        doc = make_document(user, b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "bad.png", "png", "image/png")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error.startswith("unreadable image")


@pytest.mark.django_db
class TestHostileFiles:
    """Files that broke a parser in a way it did not turn into ExtractionFailed: the document stayed `pending`
    for good (nothing retries a pending document), and `retry_extract` stopped at it."""

    def test_a_pdf_nested_too_deeply_fails(self, user):
        doc = make_document(user, pdf_of_streams(b"BT /F1 12 Tf " + b"[" * 200_000 + b"]" * 200_000 + b" TJ ET"),
                            "deep.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error == "unreadable PDF: nested too deeply"

    def test_a_lone_surrogate_from_a_pdf_font_map_is_stored_as_a_replacement_character(self, user):
        cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap 1 begincodespacerange <00> <FF> "
                b"endcodespacerange 1 beginbfchar <41> <D800> endbfchar endcmap CMapName currentdict /CMap "
                b"defineresource pop end end")
        font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>"
        data = pdf_of_streams(b"BT /F1 12 Tf 72 720 Td (AAB) Tj ET", font=font,
                              extra=(b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",))
        doc = make_document(user, data, "odd-font.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"  # was a UnicodeEncodeError on saving, left pending
        doc.refresh_from_db()
        assert doc.extracted_text == "\ufffd\ufffdB"

    @staticmethod
    def aes_encrypted_pdf(text: str, *, user_password: str) -> bytes:
        writer = PdfWriter(clone_from=io.BytesIO(make_pdf(text)))
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-256")
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()

    def test_an_aes_encrypted_pdf_with_only_an_owner_password_is_read(self, user):
        doc = make_document(user, self.aes_encrypted_pdf("Methane under AES", user_password=""), "locked.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"  # pypdf needs `cryptography` for AES
        doc.refresh_from_db()
        assert "Methane under AES" in doc.extracted_text

    def test_a_pdf_with_a_user_password_fails_saying_so(self, user):
        data = self.aes_encrypted_pdf("Methane under lock", user_password="secret")
        doc = make_document(user, data, "locked.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error == "the PDF is password-protected: upload a copy without its password"  # not
        # "unreadable PDF: File has not been decrypted"

    def test_a_pdf_without_text_on_its_pages_says_why_it_has_none(self, user):
        """A scanned PDF (pages that are images) ended `done` with no text and no word why."""
        doc = make_document(user, pdf_of_streams(b"0.5 g 72 72 100 100 re f", b""), "scan.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == ""
        assert "no text on its pages: a scanned PDF's pages are images" in doc.extract_error

    def test_a_png_whose_text_chunk_inflates_too_far_fails(self, user):
        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        png = blank_png(20, 20)
        ztxt = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"A" * (50 << 20), 9))  # 50 MB inflated
        doc = make_document(user, png[:33] + ztxt + png[33:], "chunky.png", "png", "image/png")  # after IHDR
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error.startswith("unreadable image:") and "MAX_TEXT_CHUNK" in doc.extract_error

    def test_whatever_else_an_extractor_raises_fails_the_document_with_the_reason(self, user, monkeypatch, caplog):
        def breaks(**kwargs):
            raise ZeroDivisionError("a parser bug")

        monkeypatch.setattr(extraction, "extract_text", breaks)
        doc = make_document(user, b"text", "notes.txt", "txt")
        assert document_extract(document_id=doc.id) == "failed"
        doc.refresh_from_db()
        assert doc.extract_error == "the extractor failed: ZeroDivisionError: a parser bug"
        assert "failed unexpectedly" in caplog.text  # with its traceback, for a fix

    def test_utf16_text_without_a_bom_is_decoded(self, user):
        for encoding in ("utf-16-le", "utf-16-be"):
            doc = make_document(user, "LNG 메탄 -162 C".encode(encoding), "notes.txt", "txt")
            assert document_extract(document_id=doc.id) == "done"
            doc.refresh_from_db()
            assert doc.extracted_text == "LNG 메탄 -162 C", encoding
        assert decode_text("가스\x00안전 LNG".encode()) == ("가스\x00안전 LNG", ())  # a stray NUL makes no UTF-16


@pytest.mark.django_db
class TestLimits:
    def test_text_is_cut_only_beyond_the_character_limit(self, settings):
        from study.extract import extract_text

        settings.EXTRACT_MAX_CHARS = 10
        whole = extract_text(data=b"0123456789", file_format="txt")
        assert (whole.text, whole.notes) == ("0123456789", ())
        cut = extract_text(data=b"0123456789A", file_format="txt")
        assert cut.text == "0123456789"
        assert cut.notes == ("cut at 10 characters (EXTRACT_MAX_CHARS)",)

    @pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
    def test_image_with_too_many_pixels_is_skipped_without_decoding(self, user, monkeypatch):
        data = blank_png(12000, 12000)  # 144 M pixels in ~18 KB
        assert len(data) < 100_000

        def no_decoding(image, *args, **kwargs):
            raise AssertionError("the pixels were decoded")

        # PNG/JPEG images load through ImageFile.load; convert() and friends call load() first.
        monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
        monkeypatch.setattr(Image.Image, "load", no_decoding)
        doc = make_document(user, data, "huge.png", "png", "image/png")
        assert document_extract(document_id=doc.id) == "skipped"
        doc.refresh_from_db()
        assert doc.extract_status == "skipped"
        assert doc.extract_error == "image too large to OCR: 12000×12000 pixels, limit 40,000,000 (OCR_MAX_PIXELS)"
        assert doc.extracted_text == ""

    def test_image_beyond_pillows_own_limit_is_skipped_too(self, user, settings, monkeypatch):
        settings.OCR_MAX_PIXELS = 10**12
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses more than twice this at open
        doc = make_document(user, blank_png(100, 100), "bomb.png", "png", "image/png")
        assert document_extract(document_id=doc.id) == "skipped"
        doc.refresh_from_db()
        assert doc.extract_error.startswith("image too large to OCR: Image size (10000 pixels) exceeds limit")

    def test_pdf_pages_beyond_max_pages_are_not_read(self, user, settings):
        settings.EXTRACT_MAX_PAGES = 2
        data = make_pdf("Page one alpha", "Page two bravo", "Page three charlie")
        doc = make_document(user, data, "book.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extract_status == "done"
        assert "alpha" in doc.extracted_text and "bravo" in doc.extracted_text
        assert "charlie" not in doc.extracted_text
        assert doc.extract_error == "partial text: only the first 2 of 3 pages were read (EXTRACT_MAX_PAGES)"

    def test_a_pdf_of_exactly_max_pages_is_read_whole(self, user, settings):
        settings.EXTRACT_MAX_PAGES = 2
        doc = make_document(user, make_pdf("Page one alpha", "Page two bravo"), "book.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert "bravo" in doc.extracted_text and doc.extract_error == ""

    def test_an_image_one_pixel_over_the_ocr_limit_is_skipped(self, user, settings):
        settings.OCR_MAX_PIXELS = 10 * 10
        doc = make_document(user, blank_png(10, 11), "page.png", "png", "image/png")
        assert document_extract(document_id=doc.id) == "skipped"
        doc.refresh_from_db()
        assert doc.extract_error == "image too large to OCR: 10×11 pixels, limit 100 (OCR_MAX_PIXELS)"

    def test_pdf_pages_stop_being_read_once_the_time_budget_is_spent(self, user, monkeypatch):
        # pypdf swallows the task's soft time limit while it decodes a form XObject: the budget is checked
        # between pages instead, so a slow PDF ends `done` with what was read rather than killed and pending.
        from study.extract import pdf

        monkeypatch.setattr(pdf, "TIME_BUDGET_SECONDS", 0)
        doc = make_document(user, make_pdf("Page one alpha", "Page two bravo", "Page three charlie"), "slow.pdf",
                            "pdf")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert "alpha" in doc.extracted_text and "bravo" not in doc.extracted_text
        assert doc.extract_error == (
            "partial text: only the first 1 of 3 pages were read: reading took longer than 0 s"
        )

    def test_a_pdf_read_within_the_time_budget_is_whole(self):
        from study.extract.pdf import extract_pdf

        result = extract_pdf(make_pdf("alpha", "bravo"), max_pages=10, max_chars=1000, time_budget=60)
        assert "alpha" in result.text and "bravo" in result.text and result.notes == ()

    def test_pdf_pages_stop_being_read_once_max_chars_are_collected(self, user, settings, monkeypatch):
        settings.EXTRACT_MAX_CHARS = 40
        read = []
        extract_page = PageObject.extract_text

        def counting(page, *args, **kwargs):
            read.append(page)
            return extract_page(page, *args, **kwargs)

        monkeypatch.setattr(PageObject, "extract_text", counting)
        data = make_pdf(*(f"Page {n} of the methane handbook" for n in range(1, 11)))  # 30 characters each
        doc = make_document(user, data, "handbook.pdf", "pdf")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert len(read) == 2
        assert doc.extracted_text == "Page 1 of the methane handbook\n\nPage 2 o"
        assert doc.extract_error == "partial text: cut at 40 characters (EXTRACT_MAX_CHARS)"

    @pytest.mark.parametrize(
        ("make_data", "name", "fmt", "max_chars", "expected"),
        [
            (lambda: ("가스 안전 " * 100).encode(), "long.txt", "txt", 14, "가스 안전 가스 안전 가스"),
            (lambda: render_png(["LNG methane 162"]), "page.png", "png", 3, "LNG"),
        ],
        ids=["text", "ocr"],
    )
    def test_text_longer_than_max_chars_is_cut(self, user, settings, make_data, name, fmt, max_chars, expected):
        settings.EXTRACT_MAX_CHARS = max_chars
        doc = make_document(user, make_data(), name, fmt)
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == expected
        assert doc.extract_error == f"partial text: cut at {max_chars} characters (EXTRACT_MAX_CHARS)"

    @pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp949"])
    def test_a_text_file_far_longer_than_max_chars_is_read_only_as_far_as_it_is_kept(self, user, settings, encoding):
        """A 50 MB note was decoded whole, by every encoding tried, to keep its first EXTRACT_MAX_CHARS: a bad byte
        far beyond them marked the text, or turned it into another encoding's mojibake."""
        settings.EXTRACT_MAX_CHARS = 200
        text = "".join(f"{n}번째 줄: 가스 용기는 안전 기준에 따라 도색한다.\n" for n in range(2000))
        data = text.encode(encoding) + b"\xff\xfe\x80 not text"  # damage far past what is kept
        doc = make_document(user, data, "long.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert doc.extracted_text == text[:200].rstrip()
        assert doc.extract_error == "partial text: cut at 200 characters (EXTRACT_MAX_CHARS)"

    def test_a_text_prefix_ends_after_white_space_and_holds_max_chars_in_any_encoding(self):
        from study.extract.text import text_prefix

        text = "가스안전관리 " * 1000 + "끝"
        for encoding in ("utf-8", "cp949"):
            prefix = text_prefix(text.encode(encoding), max_chars=100)
            assert len(prefix) <= 800
            assert prefix.decode(encoding).endswith(" ") and len(prefix.decode(encoding)) >= 100
        for encoding in ("utf-16", "utf-16-le", "utf-16-be"):  # at an even length: a character ends there
            prefix = text_prefix(text.encode(encoding), max_chars=100)
            assert len(prefix) == 800 and text.startswith(prefix.decode(encoding))
        assert text_prefix(b"short", max_chars=100) == b"short"
        no_space = "가" * 1000
        assert text_prefix(no_space.encode("utf-16-le"), max_chars=100) == no_space.encode("utf-16-le")[:800]
        assert text_prefix(no_space.encode(), max_chars=100) == no_space.encode()[:798]  # where 가 starts
        emoji = "\U0001f600" * 1000  # a surrogate pair each in UTF-16: not cut between its halves
        assert text_prefix(emoji.encode("utf-16-be"), max_chars=99).decode("utf-16-be") == emoji[:198]

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
    def test_a_long_utf16_text_is_cut_between_its_characters(self, settings, encoding):
        """The cut went after the last byte that looked like white space, and in UTF-16 such a byte is as often
        half of another character (갠 is U+AC20): the text came out as mojibake, or with a replacement character."""
        from study.extract import extract_text
        from study.extract.base import clean_text

        settings.EXTRACT_MAX_CHARS = 200
        text = "".join("\uac20 is a " * 10 + "\n" for _ in range(200))
        result = extract_text(data=text.encode(encoding), file_format="txt")
        assert (result.text, result.notes) == (clean_text(text)[:200].rstrip(),
                                               ("cut at 200 characters (EXTRACT_MAX_CHARS)",))

    @pytest.mark.postgresql  # the full-text index's size limit
    def test_text_too_large_for_the_full_text_index_fails_without_retrying(self, user, settings, monkeypatch):
        settings.EXTRACT_MAX_CHARS = 10**7
        unique_words = " ".join(f"w{n:07d}" for n in range(150_000))  # a 1.8 MB tsvector; the limit is 1 MB
        doc = make_document(user, unique_words.encode(), "words.txt", "txt")
        result = extract_document.apply(args=[doc.id])
        assert (result.state, result.get()) == ("SUCCESS", "failed")
        doc.refresh_from_db()
        assert doc.extract_status == "failed"
        assert doc.extracted_text == ""
        assert doc.extract_error.startswith("the extracted text is too large for the full-text index (string is too")
        assert doc.extract_error.endswith("lower EXTRACT_MAX_CHARS, then retry")

        # any other OperationalError still reaches the task, which retries it
        def lost_connection(*args, **kwargs):
            raise OperationalError("server closed the connection unexpectedly")

        other = make_document(user, b"short", "short.txt", "txt")
        monkeypatch.setattr(Document, "save", lost_connection)
        with pytest.raises(OperationalError):
            document_extract(document_id=other.id)


@pytest.mark.django_db
class TestIdempotency:
    def test_second_run_changes_nothing(self, user):
        doc = make_document(user, b"first", "a.txt", "txt")
        assert document_extract(document_id=doc.id) == "done"
        Document.objects.filter(pk=doc.id).update(extracted_text="kept")
        assert document_extract(document_id=doc.id) == "not_pending"
        doc.refresh_from_db()
        assert doc.extracted_text == "kept"

    def test_deleted_and_unknown_documents_are_left_alone(self, user):
        doc = make_document(user, b"first", "a.txt", "txt")
        Document.objects.filter(pk=doc.id).update(deleted_at=doc.created_at)
        assert document_extract(document_id=doc.id) == "not_pending"
        assert document_extract(document_id=10**12) == "not_pending"
        doc.refresh_from_db()
        assert doc.extract_status == "pending"

    def test_reset_only_touches_live_non_pending(self, user):
        failed = make_document(user, b"x", "a.txt", "txt")
        Document.objects.filter(pk=failed.id).update(extract_status="failed", extract_error="boom",
                                                     extracted_at=timezone.now())
        pending = make_document(user, b"y", "b.txt", "txt")
        done = make_document(user, b"z", "c.txt", "txt")
        assert document_extract(document_id=done.id) == "done"
        assert documents_reset_for_retry(document_ids=[failed.id, pending.id, done.id]) == 1
        done.refresh_from_db()
        assert (done.extract_status, done.extracted_text) == ("done", "z")  # a finished document keeps its text
        failed.refresh_from_db()
        assert (failed.extract_status, failed.extract_error) == ("pending", "")

    def test_a_document_done_or_deleted_is_not_read_again(self, user):
        done = make_document(user, b"first", "a.txt", "txt")
        assert document_extract(document_id=done.id) == "done"
        deleted = make_document(user, b"second", "b.txt", "txt")
        document_delete(document=deleted)
        for document in (done, deleted):
            assert document_extract(document_id=document.id) == "not_pending"
            document.refresh_from_db()
            assert document.extract_attempts == 0  # no run was counted: the extractor never started

    def test_retry_leaves_deleted_documents_alone(self, user):
        failed = make_document(user, b"x", "a.txt", "txt")
        Document.objects.filter(pk=failed.id).update(
            extract_status="failed", extract_error="boom", extracted_at=timezone.now()
        )
        document_delete(document=Document.objects.get(pk=failed.id))
        assert documents_reset_for_retry(document_ids=[failed.id]) == 0
        failed.refresh_from_db()
        assert (failed.extract_status, failed.extract_error) == ("failed", "boom")

    def test_a_document_linked_other_than_as_a_snapshot_leaves_the_sessions_ocr_text_alone(self, user):
        snapshot = SessionAssetFactory(
            session__user=user, document__extract_status="done", document__extracted_text="HANDWRITING"
        )
        StudySession.objects.filter(pk=snapshot.session_id).update(ocr_text="corrected by hand")
        reference = SessionAssetFactory(
            session=snapshot.session,
            asset_type="reference",
            role=None,
            document=make_document(user, b"reference text", "ref.txt", "txt"),
        )
        assert document_extract(document_id=reference.document_id) == "done"
        assert StudySession.objects.get(pk=snapshot.session_id).ocr_text == "corrected by hand"


@pytest.mark.django_db
class TestInterruptedRuns:
    """A run killed outright (a hard time limit, out of memory) leaves its count in `extract_attempts`; a document
    that kills its worker every time fails after EXTRACT_MAX_INTERRUPTED runs instead of being sent for good."""

    def test_a_run_is_counted_while_it_runs_and_uncounted_when_it_ends(self, user, monkeypatch):
        doc = make_document(user, b"text", "a.txt", "txt")
        Document.objects.filter(pk=doc.id).update(extract_attempts=1)  # one earlier run was killed
        during = []
        real_read = extraction._read

        def reading(document):
            during.append(Document.objects.values_list("extract_attempts", flat=True).get(pk=document.pk))
            return real_read(document)

        monkeypatch.setattr(extraction, "_read", reading)
        assert document_extract(document_id=doc.id) == "done"
        assert during == [2]
        doc.refresh_from_db()
        assert doc.extract_attempts == 0

    def test_a_document_interrupted_too_often_fails_with_the_reason_and_can_be_retried(self, user, monkeypatch):
        doc = make_document(user, b"text", "a.txt", "txt")
        Document.objects.filter(pk=doc.id).update(extract_attempts=extraction.EXTRACT_MAX_INTERRUPTED)
        monkeypatch.setattr(extraction, "_read", lambda document: pytest.fail("the file was read again"))

        assert document_extract(document_id=doc.id) == "failed"

        doc.refresh_from_db()
        assert doc.extract_status == "failed"
        assert doc.extract_error.startswith("the extraction did not finish 3 times (its worker was stopped")
        monkeypatch.undo()
        assert documents_reset_for_retry(document_ids=[doc.id]) == 1
        assert document_extract(document_id=doc.id) == "done"
        doc.refresh_from_db()
        assert (doc.extract_status, doc.extract_attempts) == ("done", 0)

    def test_a_run_stopped_by_its_hard_time_limit_keeps_its_count(self, user, monkeypatch):
        # billiard stops a child past its hard limit with SIGTERM first, which the child turns into SystemExit
        doc = make_document(user, b"text", "a.txt", "txt")

        def stopped(document):
            raise SystemExit(-15)

        monkeypatch.setattr(extraction, "_read", stopped)
        with pytest.raises(SystemExit):
            document_extract(document_id=doc.id)
        doc.refresh_from_db()
        assert (doc.extract_status, doc.extract_attempts) == ("pending", 1)

    def test_a_run_whose_recording_the_task_retries_takes_its_count_back(self, user, monkeypatch):
        from django.db import OperationalError

        from studyserver.testing import postgresql_operational_error

        doc = make_document(user, b"text", "a.txt", "txt")

        def lock_timeout(*args, **kwargs):
            raise postgresql_operational_error("55P03", "canceling statement due to lock timeout")

        monkeypatch.setattr(extraction, "_finish", lock_timeout)
        with pytest.raises(OperationalError):
            document_extract(document_id=doc.id)
        doc.refresh_from_db()
        assert (doc.extract_status, doc.extract_attempts) == ("pending", 0)

    def test_a_database_error_that_comes_back_each_run_fails_the_document_in_the_end(self, user, monkeypatch):
        """The task fails at once on it (no retry cures it), the document stays pending and the sweep sends it
        again: each such run counts, so the sweep's resends end in `failed` instead of going on every 30 minutes."""
        from django.db import DataError

        doc = make_document(user, b"text", "a.txt", "txt")

        def refused(*args, **kwargs):
            raise DataError("a value the column cannot hold")

        monkeypatch.setattr(extraction, "_finish", refused)
        for run in range(1, extraction.EXTRACT_MAX_INTERRUPTED + 1):
            result = extract_document.apply(args=[doc.id])
            assert (result.state, type(result.result)) == ("FAILURE", DataError)
            doc.refresh_from_db()
            assert (doc.extract_status, doc.extract_attempts) == ("pending", run)
        monkeypatch.undo()
        assert extract_document.apply(args=[doc.id]).get() == "failed"
        doc.refresh_from_db()
        assert doc.extract_status == "failed"
        assert doc.extract_error.startswith("the extraction did not finish 3 times")

    def test_fewer_interruptions_still_extract(self, user):
        doc = make_document(user, b"text", "a.txt", "txt")
        Document.objects.filter(pk=doc.id).update(extract_attempts=extraction.EXTRACT_MAX_INTERRUPTED - 1)
        assert document_extract(document_id=doc.id) == "done"


@pytest.mark.django_db
class TestFileStoreOutages:
    """django-storages' S3 backend raises botocore's errors, which are not the built-in ConnectionError: a store
    that is away or busy must be retried, not fail the document for good."""

    @pytest.mark.parametrize(
        "error",
        [
            EndpointConnectionError(endpoint_url="https://s3.example"),
            ReadTimeoutError(endpoint_url="https://s3.example"),
            ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"),
            ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "GetObject"),
            # what boto3's download raises once s3transfer gave up retrying a dropped or timed-out read
            TransferRetriesExceeded(ReadTimeoutError(endpoint_url="https://s3.example")),
            Boto3RetriesExceeded(ReadTimeoutError(endpoint_url="https://s3.example")),
        ],
        ids=["no-connection", "read-timeout", "slow-down", "internal-error", "s3transfer-gave-up", "boto3-gave-up"],
    )
    def test_an_unreachable_or_failing_store_is_retried_and_the_document_stays_pending(
        self, user, monkeypatch, error
    ):
        doc = make_document(user, b"text", "a.txt", "txt")
        calls = []

        def unavailable(document):
            calls.append(document.pk)
            raise error

        monkeypatch.setattr(extraction, "_read", unavailable)
        result = extract_document.apply(args=[doc.id])  # eager: the retries run at once
        assert isinstance(result.result, StorageUnavailable)
        assert len(calls) == 1 + extract_document.max_retries
        doc.refresh_from_db()
        assert (doc.extract_status, doc.extract_error) == ("pending", "")
        assert doc.extract_attempts == 0  # retried runs ended: none counts as interrupted

    def test_a_file_the_store_refuses_fails_with_the_reason(self, user, monkeypatch):
        doc = make_document(user, b"text", "a.txt", "txt")

        def denied(document):
            response = {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}
            raise ClientError(response, "GetObject")

        monkeypatch.setattr(extraction, "_read", denied)
        assert extract_document.apply(args=[doc.id]).get() == "failed"
        doc.refresh_from_db()
        assert doc.extract_status == "failed"
        assert "AccessDenied" in doc.extract_error


@pytest.mark.django_db
class TestExtractsSweep:
    def age(self, document: Document, minutes: int) -> None:
        Document.objects.filter(pk=document.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))

    def test_documents_pending_for_long_are_extracted_again(self, user, settings):
        settings.CELERY_TASK_ALWAYS_EAGER = True
        lost = make_document(user, b"lost text", "lost.txt", "txt")
        recent = make_document(user, b"recent", "recent.txt", "txt")
        deleted = make_document(user, b"deleted", "deleted.txt", "txt")
        failed = make_document(user, b"failed", "failed.txt", "txt")
        Document.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
        Document.objects.filter(pk=failed.pk).update(extract_status="failed", extract_error="bad file",
                                                     extracted_at=timezone.now())
        for document in (lost, deleted, failed):
            self.age(document, 31)
        self.age(recent, 29)
        assert extracts_sweep.apply().get() == 1
        statuses = dict(Document.objects.values_list("pk", "extract_status"))
        assert statuses == {lost.pk: "done", recent.pk: "pending", deleted.pk: "pending", failed.pk: "failed"}
        assert Document.objects.get(pk=lost.pk).extracted_text == "lost text"

    def test_a_document_sent_again_waits_another_period_before_the_next_send(self, user, monkeypatch):
        doc = make_document(user, b"text", "a.txt", "txt")
        self.age(doc, 45)
        sent = []
        monkeypatch.setattr(extract_document, "apply_async", lambda args, kwargs: sent.append(args))
        assert documents_pending_resend() == 1
        assert documents_pending_resend() == 0  # still queued somewhere: not sent again at once
        assert sent == [(doc.id,)]
        self.age(doc, 31)
        assert documents_pending_resend() == 1

    def test_a_refused_send_is_logged_and_tried_again_by_a_later_sweep(self, user, monkeypatch, caplog):
        doc = make_document(user, b"text", "a.txt", "txt")
        self.age(doc, 31)

        def refused(args, kwargs):
            raise ConnectionRefusedError("broker down")

        monkeypatch.setattr(extract_document, "apply_async", refused)
        assert documents_pending_resend() == 0
        assert f"could not enqueue {extract_document.name}({doc.id},)" in caplog.text
        self.age(doc, 31)
        monkeypatch.setattr(extract_document, "apply_async", lambda args, kwargs: None)
        assert documents_pending_resend() == 1

    def test_the_sweep_is_scheduled(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["extracts-sweep"]
        assert entry["task"] == extracts_sweep.name


class SlowBackend:
    """The backend (file read, OCR) replaced by one that runs the real one only once `release` is set: the slow
    part of an extraction, held open while a test acts. `running` is set on entry; `calls` counts the runs and
    `pids` records the database backend of each (the extracting connection)."""

    def __init__(self, monkeypatch) -> None:
        self.running, self.release = threading.Event(), threading.Event()
        self.calls, self.pids = 0, []
        run_backend = extraction._run_backend

        def slow(document):
            self.calls += 1
            self.pids.append(connection.connection.info.backend_pid)
            self.running.set()
            assert self.release.wait(20), "never released"
            return run_backend(document)

        monkeypatch.setattr(extraction, "_run_backend", slow)

    def meanwhile(self, action):
        """A call for run_concurrently: once the slow part runs, do `action(extracting_pid)`, then release it."""

        def call():
            try:
                assert self.running.wait(20), "the extraction never reached its slow part"
                return action(self.pids[0])
            finally:
                self.release.set()

        return call


def lock_row_at_once(document_id: int) -> Document:
    """The document's row locked FOR UPDATE (which conflicts with every row lock) with NOWAIT: raises instead of
    waiting when any other transaction holds a lock on it. Call inside a transaction."""
    return Document.objects.select_for_update(nowait=True).get(pk=document_id)


@pytest.mark.postgresql  # row locks, advisory locks, pg_stat_activity
@pytest.mark.django_db(transaction=True)
class TestNoTransactionDuringTheSlowPart:
    def test_the_document_is_writable_while_it_is_extracted(self, user, monkeypatch):
        doc = make_document(user, "메탄".encode(), "a.txt", "txt")
        backend = SlowBackend(monkeypatch)

        def rename(extracting_pid: int) -> str:
            assert not backend_in_transaction(extracting_pid)  # nothing held back for VACUUM either
            with transaction.atomic():
                document = lock_row_at_once(doc.id)
                document.title = "renamed meanwhile"
                document.save(update_fields=["title", "updated_at"])
            return "renamed"

        def extract() -> str:
            return document_extract(document_id=doc.id)

        assert run_concurrently(extract, backend.meanwhile(rename)) == ["done", "renamed"]
        doc.refresh_from_db()
        assert (doc.title, doc.extract_status, doc.extracted_text) == ("renamed meanwhile", "done", "메탄")

    def test_a_document_deleted_during_its_extraction_gets_no_text(self, user, monkeypatch):
        """SPEC: deleted documents are left alone; the text extracted for one deleted meanwhile is dropped, and its
        sessions keep the OCR text they had."""
        older = SessionAssetFactory(
            session__user=user, document=make_document(user, b"older page", "older.txt", "txt")
        )
        assert document_extract(document_id=older.document_id) == "done"
        session = older.session
        asset = SessionAssetFactory(
            session=session, role="prompt", document=make_document(user, b"newer page", "newer.txt", "txt")
        )
        backend = SlowBackend(monkeypatch)

        def delete(extracting_pid: int) -> str:
            with transaction.atomic():
                document_delete(document=lock_row_at_once(asset.document_id))
            return "deleted"

        def extract() -> str:
            return document_extract(document_id=asset.document_id)

        assert run_concurrently(extract, backend.meanwhile(delete)) == ["not_pending", "deleted"]
        document = Document.objects.get(pk=asset.document_id)
        assert document.deleted_at is not None
        assert (document.extract_status, document.extracted_text, document.extracted_at) == ("pending", "", None)
        assert StudySession.objects.get(pk=session.pk).ocr_text == "older page"
        assert backend.calls == 1

    def test_a_second_delivery_during_the_extraction_does_nothing(self, user, monkeypatch):
        asset = SessionAssetFactory(session__user=user, document=make_document(user, b"once", "a.txt", "txt"))
        backend = SlowBackend(monkeypatch)

        def deliver_again(extracting_pid: int) -> str:
            assert advisory_lock_holders(extract_lock_key(asset.document_id)) == [extracting_pid]
            return document_extract(document_id=asset.document_id)

        def first() -> str:
            return document_extract(document_id=asset.document_id)

        with counting_updates("study_document") as documents, counting_updates("study_studysession") as sessions:
            assert run_concurrently(first, backend.meanwhile(deliver_again)) == ["done", "not_pending"]
            assert (backend.calls, documents(), sessions()) == (1, 2, 1)  # the run's count, then its record
        assert Document.objects.get(pk=asset.document_id).extracted_text == "once"
        assert StudySession.objects.get(pk=asset.session_id).ocr_text == "once"
        assert advisory_lock_holders(extract_lock_key(asset.document_id)) == []

    def test_a_writer_holding_the_row_delays_the_outcome_instead_of_losing_it(self, user):
        """The row is only locked to record the outcome, and then waited for: a rename committing at that moment
        does not make the extraction give up (and leave the document pending with no task to extract it)."""
        doc = make_document(user, b"kept", "a.txt", "txt")
        locked = threading.Event()

        def rename() -> bool:
            with transaction.atomic():
                document = lock_row_at_once(doc.id)
                document.title = "renamed"
                document.save(update_fields=["title", "updated_at"])
                locked.set()
                return hold_until_another_waits()

        def extract() -> str:
            assert locked.wait(20)
            return document_extract(document_id=doc.id)

        assert run_concurrently(rename, extract) == [True, "done"]
        doc.refresh_from_db()
        assert (doc.title, doc.extract_status, doc.extracted_text) == ("renamed", "done", "kept")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_workers_extract_once(user, monkeypatch):
    doc = make_document(user, "동시 실행".encode(), "race.txt", "txt")
    calls = []
    run_backend = extraction._run_backend
    monkeypatch.setattr(extraction, "_run_backend", lambda document: calls.append(1) or run_backend(document))
    with counting_updates("study_document") as updates:
        results = run_concurrently(*(lambda: document_extract(document_id=doc.id) for _ in range(2)))
        assert (len(calls), updates()) == (1, 2)  # one run: its count, then its record
    assert sorted(results) == ["done", "not_pending"]
    doc.refresh_from_db()
    assert doc.extracted_text == "동시 실행"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_document_whose_extracting_worker_died_is_extracted_by_the_next_delivery(user):
    """The extract lock is a session lock of the extracting connection: taken by a live worker, deliveries of the
    task leave the document alone; when that worker's connection ends (killed), the next delivery extracts it."""
    doc = make_document(user, b"taken over", "a.txt", "txt")
    with psycopg.connect(worker_database_url(), autocommit=True) as other_worker:
        other_worker.execute("SELECT pg_advisory_lock(%s)", [advisory_lock_key(extract_lock_key(doc.id))])
        assert document_extract(document_id=doc.id) == "not_pending"
        assert Document.objects.get(pk=doc.id).extract_status == "pending"
    # The server ends the closed connection's backend (and so its lock) a moment after the client hangs up.
    assert wait_for(lambda: advisory_lock_holders(extract_lock_key(doc.id)) == [], timeout=10)
    assert document_extract(document_id=doc.id) == "done"
    assert Document.objects.get(pk=doc.id).extracted_text == "taken over"


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_extract_lock_is_released_on_a_kept_connection(user, monkeypatch):
    """Workers keep their connection between tasks (CONN_MAX_AGE): the lock must not stay with it."""
    done = make_document(user, b"text", "a.txt", "txt")
    assert document_extract(document_id=done.id) == "done"
    pid = connection.connection.info.backend_pid

    def network_down(document):
        raise ConnectionError("storage unreachable")

    monkeypatch.setattr(extraction, "_run_backend", network_down)
    retried = make_document(user, b"text", "b.txt", "txt")
    with pytest.raises(ConnectionError):  # transient: the task retries it
        document_extract(document_id=retried.id)
    assert connection.connection.info.backend_pid == pid  # the same connection, still open
    assert advisory_lock_holders(extract_lock_key(done.id)) == []
    assert advisory_lock_holders(extract_lock_key(retried.id)) == []
    assert Document.objects.get(pk=retried.id).extract_status == "pending"


def test_a_jpeg_is_an_image_by_its_first_bytes_whatever_its_name():
    from study.extract import kind_of

    jpeg = io.BytesIO()
    Image.new("L", (4, 4), 255).save(jpeg, format="JPEG")
    assert kind_of(file_format="bin", content_type="application/octet-stream", head=jpeg.getvalue()[:16]) == "image"


def test_a_palette_image_with_a_transparent_background_is_read_on_white():
    """Snapshots are dark strokes on a transparent canvas, also when saved with a palette."""
    from study.extract.ocr import _on_white

    canvas = Image.new("P", (4, 4), 0)
    canvas.putpalette([0, 0, 0, 20, 20, 20])  # index 0: the transparent background (black under its alpha)
    canvas.putpixel((1, 1), 1)  # one dark stroke
    canvas.info["transparency"] = 0
    flattened = _on_white(canvas)
    assert flattened.getpixel((0, 0)) == 255 and flattened.getpixel((1, 1)) == 20
