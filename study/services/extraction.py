"""Text extraction of documents: check a document is pending, run the backend, record the outcome.

The backend (file read, PDF parsing, OCR: up to minutes) runs with no transaction and no row lock open, so
the document stays writable meanwhile (renamed, deleted, linked to a session) and VACUUM is not held back:
1. read the document: extracted only while live and `pending`;
2. run the backend, outside any transaction;
3. one short transaction: lock the row again; record the outcome only if the document is still live and
   `pending`, then refresh the OCR text of the sessions that link it as a handwriting snapshot. A document
   deleted meanwhile keeps no text (deleted documents are left alone), one finished meanwhile keeps its own.
A document being extracted is `pending` with its advisory lock held (`extract_lock_key`, a session-level lock
of the worker's connection, held across the three steps): a second delivery of the task meanwhile does nothing,
and the lock goes with a killed worker's connection, so the redelivered task extracts the document (there is no
`processing` status to unstick, and the API's statuses stay pending / done / failed / skipped).
Text cut by a limit (EXTRACT_MAX_PAGES / EXTRACT_MAX_CHARS) is still `done`: what was read is
searchable; `extract_error` then says that it is partial.
A run counts itself in `extract_attempts` while it runs; a run stopped before its end, or ended by an error the task
does not retry, leaves its count, and a document whose runs did not finish EXTRACT_MAX_INTERRUPTED times fails
rather than being sent again forever.
"""

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from psycopg.errors import ProgramLimitExceeded

from study.extract import ExtractionFailed, ExtractionSkipped, extract_text
from study.models import Document
from study.models.documents import ExtractStatus
from study.models.sessions import AssetType
from study.services.sessions import sessions_ocr_text_fill
from study.store import raise_if_store_down
from studyserver.celery import send_or_log
from studyserver.locks import advisory_session_lock
from studyserver.tasks_retry import retried

logger = logging.getLogger(__name__)

ERROR_MAX_CHARS = 2000
# How many runs of one document may end unfinished until it fails: a document that gets its worker stopped every
# time (a hard time limit, out of memory), or whose outcome the database refuses every time, would otherwise be
# sent again by the sweep every EXTRACT_STALE_AFTER, for good.
EXTRACT_MAX_INTERRUPTED = 3
def _read(document: Document) -> bytes:
    with document.file.open("rb") as handle:
        return handle.read()


def _run_backend(document: Document) -> tuple[str, str, str]:
    """(status, text, error) for one document; transient I/O errors (the file store's too: StorageUnavailable)
    propagate for the task to retry.

    Anything else an extractor raises fails the document with the reason: the extractors turn the errors of broken
    files they know into ExtractionFailed, but a parser can still meet a file that breaks it some other way, and a
    document left `pending` would never be extracted nor retried (nothing but a retry changes it).
    """
    try:
        try:
            data = _read(document)
        except Exception as exc:
            raise_if_store_down(exc)
            raise
        result = extract_text(data=data, file_format=document.file_format, content_type=document.content_type)
    except ExtractionSkipped as exc:
        return ExtractStatus.SKIPPED, "", str(exc)
    except ExtractionFailed as exc:
        return ExtractStatus.FAILED, "", str(exc)
    except FileNotFoundError:
        return ExtractStatus.FAILED, "", "the stored file is missing"
    except (ConnectionError, TimeoutError):
        raise
    except OSError as exc:  # (its text names the file's path on this server: logged, not shown to the learner)
        logger.warning("extract document %s: could not read the stored file: %s", document.pk, exc)
        reason = os.strerror(exc.errno) if exc.errno else type(exc).__name__
        return ExtractStatus.FAILED, "", f"could not read the stored file: {reason}"
    except SoftTimeLimitExceeded:
        return ExtractStatus.FAILED, "", "time limit exceeded"
    except Exception as exc:  # see the docstring; logged with its traceback, for a fix
        logger.exception("extract document %s: the extractor failed unexpectedly", document.pk)
        return ExtractStatus.FAILED, "", f"the extractor failed: {type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
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
    document.extract_attempts = 0
    document.save(update_fields=["extract_status", "extracted_text", "extract_error", "extracted_at",
                                 "extract_attempts", "updated_at"])
    return _fill_handwriting_sessions(document, text) if status == ExtractStatus.DONE else 0


def extract_lock_key(document_id: int) -> str:
    """The advisory lock held while the document is extracted."""
    return f"study.document.extract:{document_id}"


def document_extract(*, document_id: int) -> str:
    """Extract a pending, live document. Returns done / failed / skipped, or not_pending when there is nothing to do
    (done, deleted or being extracted by another worker).

    Call it outside a transaction (the task is): in one, the backend's time is the caller's transaction's.
    """
    with advisory_session_lock(extract_lock_key(document_id)) as ours:
        if not ours:
            logger.info("extract document %s: being extracted by another worker", document_id)
            return "not_pending"
        document = Document.objects.filter(
            pk=document_id, extract_status=ExtractStatus.PENDING, deleted_at__isnull=True
        ).first()
        if document is None:
            logger.info("extract document %s: not pending (done or deleted)", document_id)
            return "not_pending"
        if document.extract_attempts >= EXTRACT_MAX_INTERRUPTED:
            error = (f"the extraction did not finish {document.extract_attempts} times (its worker was stopped: the "
                     "hard time limit, out of memory, a shutdown; or an error the worker logged); retrying the "
                     "extraction tries again")
            outcome = _finish(document_id, status=ExtractStatus.FAILED, text="", error=error)
        else:
            with _counted(document):
                status, text, error = _run_backend(document)
                outcome = _finish(document_id, status=status, text=text, error=error)
    if outcome is None:
        return "not_pending"
    status, text, error, sessions = outcome
    logger.info(
        "extract document %s (%s): %s, %d chars%s%s",
        document_id, document.file_format, status, len(text),
        f", ocr_text of {sessions} session(s)" if sessions else "", f" ({error})" if error else "",
    )
    return str(status)


@contextmanager
def _counted(document: Document) -> Iterator[None]:
    """Count a run in `extract_attempts` while it runs and records its outcome.

    A run that records its outcome leaves 0 (`_record`); one whose outcome is dropped leaves a document that is
    deleted or no longer pending, where the count does not matter (a retry resets it). A run that raises an error
    the task retries (the database or the file store away or busy) takes its count back: it is no failure of this
    document. A run that is stopped keeps it: killed outright (out of memory), or stopped by its hard time limit
    (billiard sends SIGTERM first, which the worker's child turns into SystemExit) or a worker shutdown; so does one
    that raises an error the task does not retry (a database error that comes back each time: the task fails, the
    document stays pending and the sweep sends it again). Those are the runs EXTRACT_MAX_INTERRUPTED counts."""
    counted = Document.objects.filter(pk=document.pk)
    counted.update(extract_attempts=F("extract_attempts") + 1)
    try:
        yield
    except Exception as exc:
        if not retried(exc):
            raise
        try:
            counted.filter(extract_attempts__gt=0).update(extract_attempts=F("extract_attempts") - 1)
        except Exception:  # the database is what failed: the count stays, the retry runs anyway
            logger.warning("extract document %s: its run could not be uncounted", document.pk, exc_info=True)
        raise


def _finish(document_id: int, *, status: str, text: str, error: str) -> tuple[str, str, str, int] | None:
    """Record the backend's outcome on the document if it is still live and pending: (status, text, error,
    sessions filled) as recorded, or None when the outcome is dropped."""
    with transaction.atomic():
        # Waits (briefly) for a writer of the row, where SKIP LOCKED would drop the outcome. NO KEY: a session
        # linking the document meanwhile passes its foreign-key check instead of waiting for this transaction.
        document = Document.objects.select_for_update(no_key=True).filter(pk=document_id).first()
        if document is None or document.deleted_at is not None:
            logger.info("extract document %s: deleted during the extraction, its text is dropped", document_id)
            return None
        if document.extract_status != ExtractStatus.PENDING:
            logger.info(
                "extract document %s: already %s (finished meanwhile), this outcome is dropped",
                document_id, document.extract_status,
            )
            return None
        try:
            with transaction.atomic():
                return status, text, error, _record(document, status=status, text=text, error=error)
        except OperationalError as exc:
            # Deterministic, unlike the other OperationalErrors the task retries: storing it again fails again.
            cause = exc.__cause__
            if not isinstance(cause, ProgramLimitExceeded):
                raise
            error = (
                f"the extracted text is too large for the full-text index ({cause.diag.message_primary or cause}); "
                "lower EXTRACT_MAX_CHARS, then retry"
            )
            return ExtractStatus.FAILED, "", error, _record(document, status=ExtractStatus.FAILED, text="", error=error)


def documents_reset_for_retry(*, document_ids: Iterable[int]) -> int:
    """Put failed/skipped documents back to pending (live ones only); returns how many changed.

    A `done` document keeps its text (and its sessions' OCR text); pending ones are already waiting.
    """
    return Document.objects.filter(
        pk__in=list(document_ids),
        deleted_at__isnull=True,
        extract_status__in=[ExtractStatus.FAILED, ExtractStatus.SKIPPED],
    ).update(extract_status=ExtractStatus.PENDING, extract_error="", extract_attempts=0, updated_at=timezone.now())


# A pending document whose row has not changed for this long lost its extraction: the broker was down at upload,
# or the task gave up after its retries (a database or file store away for longer). The sweep sends it again.
EXTRACT_STALE_AFTER = timedelta(minutes=30)
SWEEP_BATCH = 500


def documents_pending_resend(*, older_than: timedelta = EXTRACT_STALE_AFTER, limit: int = SWEEP_BATCH) -> int:
    """Send the extraction of live documents left `pending` for `older_than` again; returns how many were sent.

    Their `updated_at` moves to now first, so one still waiting in a long queue is sent at most once a period.
    A second delivery is harmless: the task does nothing for a document being extracted or no longer pending.
    """
    from study.tasks import extract_document

    now = timezone.now()
    stale = Document.objects.filter(
        extract_status=ExtractStatus.PENDING, deleted_at__isnull=True, updated_at__lt=now - older_than
    )
    document_ids = list(stale.order_by("updated_at", "id").values_list("id", flat=True)[:limit])
    Document.objects.filter(pk__in=document_ids).update(updated_at=now)
    sent = sum(send_or_log(extract_document, document_id) for document_id in document_ids)  # a lost one: next sweep
    if document_ids:
        logger.info("extracts sweep: sent %d of %d stale pending document(s)", sent, len(document_ids))
    return sent
