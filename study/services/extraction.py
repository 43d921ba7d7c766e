"""Text extraction of documents: claim a pending document, run the backend, record the outcome.

A document is claimed with SELECT … FOR NO KEY UPDATE SKIP LOCKED while it is processed, so two
workers never extract it twice and a crashed worker leaves it `pending` (nothing to unstick). NO KEY:
rows that refer to the document (a session linking it meanwhile) still pass their foreign-key check
instead of waiting for the OCR, and of deadlocking with it over the session row.
Text cut by a limit (EXTRACT_MAX_PAGES / EXTRACT_MAX_CHARS) is still `done`: what was read is
searchable; `extract_error` then says that it is partial.
"""

import logging
from collections.abc import Iterable

from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError, transaction
from django.utils import timezone
from psycopg.errors import ProgramLimitExceeded

from study.extract import ExtractionFailed, ExtractionSkipped, extract_text
from study.models import Document
from study.models.documents import ExtractStatus
from study.models.sessions import AssetType
from study.services.sessions import sessions_ocr_text_fill

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 2000


def _read(document: Document) -> bytes:
    with document.file.open("rb") as handle:
        return handle.read()


def _run_backend(document: Document) -> tuple[str, str, str]:
    """(status, text, error) for one document; transient I/O errors propagate for the task to retry."""
    try:
        data = _read(document)
        result = extract_text(data=data, file_format=document.file_format, content_type=document.content_type)
    except ExtractionSkipped as exc:
        return ExtractStatus.SKIPPED, "", str(exc)
    except ExtractionFailed as exc:
        return ExtractStatus.FAILED, "", str(exc)
    except FileNotFoundError:
        return ExtractStatus.FAILED, "", "the stored file is missing"
    except (ConnectionError, TimeoutError):
        raise
    except OSError as exc:
        return ExtractStatus.FAILED, "", f"could not read the file: {exc}"
    except SoftTimeLimitExceeded:
        return ExtractStatus.FAILED, "", "time limit exceeded"
    note = f"partial text: {'; '.join(result.notes)}" if result.notes else ""
    return ExtractStatus.DONE, result.text, note


def _fill_handwriting_sessions(document: Document, text: str) -> int:
    """The sessions that link this document as a handwriting snapshot refresh their `ocr_text` (how many)."""
    session_ids = document.session_assets.filter(asset_type=AssetType.HANDWRITING_PNG).values("session_id")
    return sessions_ocr_text_fill(session_ids=session_ids) if text else 0


def _record(document: Document, *, status: str, text: str, error: str) -> int:
    """Store the outcome on the claimed document; a done snapshot's text goes to its sessions (how many)."""
    document.extract_status = status
    document.extracted_text = text
    document.extract_error = error[:ERROR_MAX_CHARS]
    document.extracted_at = timezone.now()
    document.save(update_fields=["extract_status", "extracted_text", "extract_error", "extracted_at", "updated_at"])
    return _fill_handwriting_sessions(document, text) if status == ExtractStatus.DONE else 0


def document_extract(*, document_id: int) -> str:
    """Extract a pending, live document. Returns done / failed / skipped, or not_pending when there is nothing to do."""
    with transaction.atomic():
        document = (
            Document.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk=document_id, extract_status=ExtractStatus.PENDING, deleted_at__isnull=True)
            .first()
        )
        if document is None:
            logger.info("extract document %s: not pending (done, deleted or claimed by another worker)", document_id)
            return "not_pending"
        status, text, error = _run_backend(document)
        try:
            with transaction.atomic():
                sessions = _record(document, status=status, text=text, error=error)
        except OperationalError as exc:
            # Deterministic, unlike the other OperationalErrors the task retries: storing it again fails again.
            cause = exc.__cause__
            if not isinstance(cause, ProgramLimitExceeded):
                raise
            status, text = ExtractStatus.FAILED, ""
            error = (
                f"the extracted text is too large for the full-text index ({cause.diag.message_primary or cause}); "
                "lower EXTRACT_MAX_CHARS, then retry"
            )
            sessions = _record(document, status=status, text=text, error=error)
    logger.info(
        "extract document %s (%s): %s, %d chars%s%s",
        document_id, document.file_format, status, len(text),
        f", ocr_text of {sessions} session(s)" if sessions else "", f" ({error})" if error else "",
    )
    return str(status)


def documents_reset_for_retry(*, document_ids: Iterable[int]) -> int:
    """Put failed/skipped documents back to pending (live ones only); returns how many changed.

    A `done` document keeps its text (and its sessions' OCR text); pending ones are already waiting.
    """
    return Document.objects.filter(
        pk__in=list(document_ids),
        deleted_at__isnull=True,
        extract_status__in=[ExtractStatus.FAILED, ExtractStatus.SKIPPED],
    ).update(extract_status=ExtractStatus.PENDING, extract_error="", updated_at=timezone.now())
