"""PDF text through pypdf (text layers only; scanned PDFs without one give empty text)."""

import io

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from .base import ExtractionFailed, ExtractResult, clean_text


def extract_pdf(data: bytes) -> ExtractResult:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # many "encrypted" PDFs only carry an owner password
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        raise ExtractionFailed(f"unreadable PDF: {exc}") from exc
    return ExtractResult(text=clean_text("\n\n".join(pages)), backend="pdf")
