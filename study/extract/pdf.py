"""PDF text through pypdf (text layers only; scanned PDFs without one give empty text)."""

import io
import time

from pypdf import PasswordType, PdfReader
from pypdf.errors import PyPdfError

from .base import ExtractionFailed, ExtractResult, clean_text

# Seconds of page reading, after which no further page is started. The extraction task's soft time limit (300 s)
# cannot stop pypdf itself: it catches every Exception while it decodes a page's form XObjects, Celery's
# SoftTimeLimitExceeded included, and reads on until the hard limit kills the worker, leaving the document pending
# for the sweep to send again and again. This budget leaves a page started just before it 60 s of the soft limit.
TIME_BUDGET_SECONDS = 240


def extract_pdf(
    data: bytes, *, max_pages: int, max_chars: int, time_budget: float | None = None
) -> ExtractResult:
    """Text of at most the first `max_pages` pages, read until more than `max_chars` characters are collected
    or `time_budget` seconds (default TIME_BUDGET_SECONDS) have passed.

    Reading a page costs time in proportion to its content stream, which many pages may share, so a few KB
    of file can hold minutes of work: the limits bound it. Cutting the text to `max_chars` is the caller's job.
    """
    if time_budget is None:
        time_budget = TIME_BUDGET_SECONDS
    deadline = time.monotonic() + time_budget
    out_of_time = False
    try:
        reader = PdfReader(io.BytesIO(data))
        # many "encrypted" PDFs only carry an owner password, which the empty user password opens
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise ExtractionFailed("the PDF is password-protected: upload a copy without its password")
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
            if time.monotonic() > deadline:
                out_of_time = len(pages) < min(max_pages, page_count)
                break
    except (PyPdfError, ValueError, KeyError, TypeError, NotImplementedError) as exc:
        # PyPdfError: PdfReadError, and also LimitReachedError (a content stream of too many tokens) and
        # DependencyError (an encryption pypdf cannot undo)
        raise ExtractionFailed(f"unreadable PDF: {exc}") from exc
    except RecursionError as exc:  # arrays nested thousands deep in a content stream
        raise ExtractionFailed("unreadable PDF: nested too deeply") from exc
    notes: tuple[str, ...] = ()
    if out_of_time:
        notes = (f"only the first {len(pages):,} of {page_count:,} pages were read: reading took longer than "
                 f"{time_budget:g} s",)
    elif len(pages) == max_pages < page_count and collected <= max_chars:
        notes = (f"only the first {max_pages:,} of {page_count:,} pages were read (EXTRACT_MAX_PAGES)",)
    text = clean_text("\n\n".join(pages))
    if not text and page_count:
        notes += ("no text on its pages: a scanned PDF's pages are images, which are not OCR'd (upload them as "
                  "images to have them read)",)
    return ExtractResult(text=text, backend="pdf", notes=notes)
