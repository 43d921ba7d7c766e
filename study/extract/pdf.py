"""PDF text through pypdf (text layers only; scanned PDFs without one give empty text)."""

import io

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from .base import ExtractionFailed, ExtractResult, clean_text


def extract_pdf(data: bytes, *, max_pages: int, max_chars: int) -> ExtractResult:
    """Text of at most the first `max_pages` pages, read until more than `max_chars` characters are collected.

    Reading a page costs time in proportion to its content stream, which many pages may share, so a few KB
    of file can hold minutes of work: the limits bound it. Cutting the text to `max_chars` is the caller's job.
    """
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # many "encrypted" PDFs only carry an owner password
        page_count = len(reader.pages)
        pages: list[str] = []
        collected = 0
        for page in reader.pages[:max_pages]:
            text = page.extract_text() or ""
            pages.append(text)
            # A page's cleaned length never exceeds its share of the cleaned whole, so stopping here
            # leaves more than max_chars: the caller cuts and says so.
            collected += len(clean_text(text))
            if collected > max_chars:
                break
    except (PyPdfError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        # PyPdfError: PdfReadError, and also LimitReachedError (a content stream of too many tokens) and
        # DependencyError (an encryption pypdf cannot undo)
        raise ExtractionFailed(f"unreadable PDF: {exc}") from exc
    except RecursionError as exc:  # arrays nested thousands deep in a content stream
        raise ExtractionFailed("unreadable PDF: nested too deeply") from exc
    notes: tuple[str, ...] = ()
    if len(pages) == max_pages < page_count and collected <= max_chars:
        notes = (f"only the first {max_pages:,} of {page_count:,} pages were read (EXTRACT_MAX_PAGES)",)
    return ExtractResult(text=clean_text("\n\n".join(pages)), backend="pdf", notes=notes)
