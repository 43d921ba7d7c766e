"""Pick the backend for a document from its first bytes, format and content type; cap the text's length."""

from dataclasses import replace

from django.conf import settings

from .base import ExtractionFailed, ExtractionSkipped, ExtractResult
from .ocr import extract_image
from .pdf import extract_pdf
from .text import extract_plain, text_prefix

TEXT_FORMATS = frozenset({"txt", "text", "md", "markdown"})
TEXT_CONTENT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
BINARY_FORMATS = frozenset({"pdf", "png", "jpg", "jpeg"})


def kind_of(*, file_format: str, content_type: str, head: bytes) -> str | None:
    """'text' | 'pdf' | 'image' | None. Magic bytes win over the name, so a renamed file still works."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff"):
        return "image"
    if (file_format or "").lower() in TEXT_FORMATS or (content_type or "").lower() in TEXT_CONTENT_TYPES:
        return "text"
    return None


def extract_text(*, data: bytes, file_format: str, content_type: str = "") -> ExtractResult:
    """Extract the text of a file's bytes, at most settings.EXTRACT_MAX_CHARS characters of it.

    Raises ExtractionSkipped / ExtractionFailed.
    """
    max_chars = settings.EXTRACT_MAX_CHARS
    kind = kind_of(file_format=file_format, content_type=content_type, head=data[:16])
    read_in_part = False
    if kind == "text":
        prefix = text_prefix(data, max_chars=max_chars)
        result, read_in_part = extract_plain(prefix), len(prefix) < len(data)
    elif kind == "pdf":
        result = extract_pdf(data, max_pages=settings.EXTRACT_MAX_PAGES, max_chars=max_chars)
    elif kind == "image":
        result = extract_image(data)
    elif (file_format or "").lower() in BINARY_FORMATS:
        raise ExtractionFailed(f"the content is not a valid {file_format} file")
    else:
        raise ExtractionSkipped(f"no text extractor for format {file_format or 'unknown'!r}")
    return _cut(result, max_chars=max_chars, read_in_part=read_in_part)


def _cut(result: ExtractResult, *, max_chars: int, read_in_part: bool) -> ExtractResult:
    """The text cut to max_chars, so that it always fits PostgreSQL's full-text index (tsvector < 1 MB); with
    `read_in_part`, the file was read only so far (text_prefix), which the notes say too."""
    if len(result.text) <= max_chars and not read_in_part:
        return result
    return replace(
        result,
        text=result.text[:max_chars].rstrip(),
        notes=(*result.notes, f"cut at {max_chars:,} characters (EXTRACT_MAX_CHARS)"),
    )
