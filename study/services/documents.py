"""Writes of documents: streamed uploads stored atomically with their row, soft delete, orphan-file sweep."""

import logging
import mimetypes
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from study.models import Document, SessionAsset, TopicDocument
from study.models.sessions import AssetType
from study.store import raise_if_store_down
from study.tasks import extract_document
from study.textnorm import nfc
from study.uploads import checked_upload_size, file_format_of, sha256_of, upload_base_name
from studyserver.celery import enqueue_on_commit
from studyserver.errors import BackendUnavailable, Conflict, NotFound

from .topics import topic_get_live

logger = logging.getLogger(__name__)

FK_VIOLATION = "23503"

# The files stored under uploads_removed_unless_committed(), when a caller's own transaction holds their rows.
_stored_under_outer_transaction: ContextVar[list[str] | None] = ContextVar("stored_under_outer", default=None)


# mimetypes.guess_type's encodings, as the content types of the files they compress.
_COMPRESSED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                     "compress": "application/x-compress", "br": "application/x-brotli"}


@dataclass(frozen=True)
class StoredUpload:
    path: str
    original_name: str
    file_format: str
    content_type: str
    size: int
    sha256: str


def _store(upload: UploadedFile, *, verified_format: str | None = None) -> StoredUpload:
    """Validate name and size, hash by chunks, and save under a unique name through the storage API.

    `verified_format` is the format the caller has checked in the content: it wins over the name (extension and
    content type); without it both come from the name.
    """
    name = upload_base_name(upload.name)
    size = checked_upload_size(upload)
    file_format = verified_format or file_format_of(name)
    digest = sha256_of(upload)
    now = timezone.now()
    unique = uuid.uuid4().hex + (f".{file_format}" if file_format else "")
    wanted = f"documents/{now:%Y}/{now:%m}/{unique}"
    try:
        path = default_storage.save(wanted, upload)
    except Exception as exc:  # a full disk, a lost bucket: the upload's fault is not the client's
        logger.error("storing upload %s failed: %s", wanted, exc, exc_info=exc)
        _delete_quietly(wanted)  # what a write that failed half-way left under the name (a unique one)
        raise BackendUnavailable() from exc
    typed_name = f"file.{verified_format}" if verified_format else name
    content_type, compressed = mimetypes.guess_type(typed_name)
    if compressed:  # notes.txt.gz is gzip, not text/plain (which it was stored, served and extracted as)
        content_type = _COMPRESSED_TYPES.get(compressed)
    content_type = content_type or "application/octet-stream"
    return StoredUpload(path, name, file_format, content_type[:100], size, digest)


def _delete_quietly(path: str) -> None:
    """Delete a stored file while handling another failure: an error here is logged (the orphan-file sweep takes
    the file later), and the first failure stays the one raised."""
    try:
        default_storage.delete(path)
    except Exception:
        logger.exception("could not delete %s after a failed upload; sweep_orphan_files removes it", path)


def _insert_document(
    *, user: AbstractBaseUser, stored: StoredUpload, title: str | None, tags: Iterable[str]
) -> Document:
    document = Document(
        user=user,
        # NFC like the file name (upload_base_name): a decomposed (NFD) title is found by a search typed in NFC.
        title=nfc(title or stored.original_name)[:255],
        original_name=stored.original_name,
        file_format=stored.file_format,
        content_type=stored.content_type,
        file_size=stored.size,
        sha256=stored.sha256,
    )
    document.file.name = stored.path
    document.tags = list(tags)
    document.save()
    enqueue_on_commit(extract_document, document.id)
    return document


def document_store_atomically(
    *,
    user: AbstractBaseUser,
    upload: UploadedFile,
    title: str | None = None,
    tags: Iterable[str] = (),
    then: Callable[[Document], object] | None = None,
    verified_format: str | None = None,
):
    """Store the file, then in one transaction insert the row, run `then(document)` and enqueue the extract.

    Any failure (validation in `then`, a constraint, the commit itself) deletes the stored file.
    Returns `then`'s result, or the document when there is no `then`.
    """
    stored = _store(upload, verified_format=verified_format)
    if (outer := _stored_under_outer_transaction.get()) is not None:
        outer.append(stored.path)
    try:
        with transaction.atomic():
            document = _insert_document(user=user, stored=stored, title=title, tags=tags)
            result = then(document) if then else document
    except BaseException as exc:
        _delete_quietly(stored.path)
        if isinstance(exc, IntegrityError):
            if getattr(exc.__cause__, "sqlstate", None) == FK_VIOLATION:
                raise NotFound("A referenced object no longer exists.") from exc
            raise Conflict("The upload conflicts with a concurrent change; please retry.") from exc
        raise
    return result


@contextmanager
def uploads_removed_unless_committed() -> Iterator[None]:
    """Around a transaction of the caller's own that stores uploads (the admin's add form, whose history entry is
    written after the row). document_store_atomically removes its file when its own block fails; inside an outer
    transaction the commit is the caller's, so a file whose row that transaction then rolls back, or fails to
    commit, is removed here when the failure leaves the block. (A COMMIT whose acknowledgement is lost raises too:
    then the row may exist without its file, as a crash between store and commit never leaves it the other way.)"""
    stored: list[str] = []
    token = _stored_under_outer_transaction.set(stored)
    try:
        yield
    except BaseException:
        for path in stored:
            _delete_quietly(path)
        raise
    finally:
        _stored_under_outer_transaction.reset(token)


def document_upload(
    *,
    user: AbstractBaseUser,
    upload: UploadedFile,
    title: str | None = None,
    tags: Iterable[str] = (),
    study_topic_id: int | None = None,
) -> Document:
    """Upload a document (optionally linked to one of the user's live topics; else 404, nothing stored)."""

    def link(document: Document) -> Document:
        if study_topic_id is not None:
            topic = topic_get_live(user=user, topic_id=study_topic_id, lock=True)
            TopicDocument.objects.create(user=user, topic=topic, document=document)
        return document

    return document_store_atomically(user=user, upload=upload, title=title, tags=tags, then=link)


def document_delete(*, document: Document) -> bool:
    """Soft delete: the row and file stay (links stay), the document leaves lists and answers 404; a deleted
    snapshot's text is no longer a session's OCR text.

    False when it was deleted already (a concurrent delete), which changes nothing.
    """
    from study.services.sessions import sessions_ocr_text_forget

    now = timezone.now()
    with transaction.atomic():
        if not document.update_if_live(deleted_at=now, updated_at=now):
            return False
        snapshots = SessionAsset.objects.filter(document=document, asset_type=AssetType.HANDWRITING_PNG)
        sessions_ocr_text_forget(assets=snapshots.only("document_id", "session_id", "asset_type"))
    return True


def parse_tags(raw: str | None) -> list[str]:
    """Comma-separated tags → a list (blank items dropped), NFC-normalised as file names and titles are."""
    return [t.strip() for t in nfc(raw or "").split(",") if t.strip()]


# The directory `_store` and `Document.file`'s upload_to write uploads under; nothing else in storage is swept.
DOCUMENT_UPLOADS_DIR = "documents"


@dataclass
class OrphanSweep:
    examined: int = 0
    orphans: int = 0  # unreferenced and past the grace period (deleted unless dry run)
    deleted: int = 0
    recent: int = 0  # unreferenced but younger than the grace period: possibly an upload still committing
    failed: int = 0  # orphans the store refused to delete (logged): left for the next sweep


def _storage_files_under(directory: str) -> Iterator[str]:
    """Every file name below `directory`, through the Storage API only (filesystem and S3 alike). Newest months
    first (uploads are stored under documents/YYYY/MM/): a sweep cut short by its time limit has done the part where
    recent failures leave their files, and not the same oldest part every day."""
    try:
        subdirectories, files = default_storage.listdir(directory)
    except FileNotFoundError:  # FileSystemStorage before the first upload; S3 just lists nothing
        return
    for subdirectory in sorted(subdirectories, reverse=True):
        yield from _storage_files_under(f"{directory}/{subdirectory}")
    for name in sorted(files):
        yield f"{directory}/{name}"


def _sweep_batch(names: list[str], *, cutoff: datetime, dry_run: bool, sweep: OrphanSweep) -> list[str]:
    """Sweep one batch of names with a single query; the orphan names of this batch."""
    # `objects` includes soft-deleted rows on purpose: a soft-deleted document keeps its file.
    referenced = set(Document.objects.filter(file__in=names).values_list("file", flat=True))
    orphans = []
    for name in names:
        if name in referenced:
            continue
        # The age check comes after the query, so a file whose row commits meanwhile is still young here.
        try:
            modified = default_storage.get_modified_time(name)
        except FileNotFoundError:  # removed since the listing (an upload's rollback, another sweep)
            continue
        if modified >= cutoff:
            sweep.recent += 1
            continue
        sweep.orphans += 1
        if not dry_run:
            try:
                default_storage.delete(name)
            except Exception as exc:  # noqa: BLE001 - the store's outage is raised again; one file's failure is logged
                raise_if_store_down(exc)  # the whole store, for a while: the task retries later
                # This file only (its permissions, an object lock): the sweep goes on; before, it stopped here every
                # day, and every older month was never swept.
                logger.warning("orphan file %s not deleted: %s: %s", name, type(exc).__name__, exc)
                sweep.failed += 1
                continue
            sweep.deleted += 1
        orphans.append(name)
    return orphans


def document_orphan_files_sweep(
    *,
    older_than: timedelta = timedelta(hours=1),
    batch_size: int = 500,
    dry_run: bool = False,
    on_batch: Callable[[OrphanSweep, list[str]], object] | None = None,
) -> OrphanSweep:
    """Delete stored upload files no Document row (live or soft-deleted) references and older than `older_than`.

    `document_store_atomically` writes the file before its transaction; a process killed in between
    leaves the file behind with no row. The grace period keeps uploads whose transaction has not
    committed yet: it must exceed the longest upload transaction. `on_batch(totals, orphan_names)`
    is called after each batch (progress, listing).
    """
    cutoff = timezone.now() - older_than
    sweep = OrphanSweep()
    batch: list[str] = []

    def flush() -> None:
        orphans = _sweep_batch(batch, cutoff=cutoff, dry_run=dry_run, sweep=sweep)
        if on_batch is not None:
            on_batch(sweep, orphans)
        batch.clear()

    for name in _storage_files_under(DOCUMENT_UPLOADS_DIR):
        sweep.examined += 1
        batch.append(name)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return sweep
