"""Reads of documents: the user's live documents, and a document's stored file opened for a download."""

import logging
from contextlib import suppress

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.db.models import QuerySet

from study.models import Document
from studyserver.errors import BackendUnavailable, NotFound, file_missing, file_store_failed

logger = logging.getLogger(__name__)


def documents_live(*, user: AbstractBaseUser) -> QuerySet[Document]:
    """The user's live (not soft-deleted) documents, newest first."""
    return Document.objects.live().filter(user=user).order_by("-created_at", "-id")


def document_get_live(*, user: AbstractBaseUser, document_id: int) -> Document | None:
    """One live document of the user, or None."""
    return documents_live(user=user).filter(pk=document_id).first()


def document_file_open(*, document: Document) -> tuple[File, int]:
    """The document's stored file, open for reading, and its size in bytes; the caller closes it (a FileResponse
    does, once sent).

    Everything that can fail before a byte is sent happens here, so it can still be a status: a file missing from
    the store is NotFound (404), a store that fails (an I/O or permission error, S3 unreachable or refusing) is
    BackendUnavailable (503 with Retry-After); a handle opened before the failure is closed. S3 fetches the
    object's content on its first access (the open only HEADs it): the seek below makes that fetch happen here
    rather than in FileResponse. What fails later, while the body streams, can no longer change the status.
    """
    handle = None
    try:
        handle = document.file.open("rb")
        handle.seek(0)
        size = document.file.size
    except Exception as exc:
        if handle is not None:
            with suppress(Exception):  # the store's failure above is the one to answer
                handle.close()
        if file_missing(exc):
            raise NotFound("The stored file is missing.") from None
        if file_store_failed(exc):
            logger.error("reading stored file %s of document %s failed: %s", document.file.name, document.pk, exc,
                         exc_info=exc)
            raise BackendUnavailable() from exc
        raise
    return handle, size
