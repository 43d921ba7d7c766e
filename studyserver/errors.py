"""API error types and the one exception handler that shapes every error response.

Every error body is `{"error_code": str, "detail": str}`; every `invalid` one adds `errors` (field -> list of
messages; `non_field_errors` for the request as a whole). Codes are stable; clients switch on them.
"""

import logging

from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.db.models import Model
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the constraint `exc` reports: PostgreSQL's (psycopg's diag); None on SQLite, which names none."""
    return getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)


def violates_unique(exc: IntegrityError, model: type[Model], constraint_name: str) -> bool:
    """Did `exc` come from the named unique constraint of `model`?

    PostgreSQL names the constraint (psycopg's diag); SQLite (the demo) names only the table's columns:
    "UNIQUE constraint failed: <table>.<column>, …".
    """
    name = violated_constraint(exc)
    if name:
        return name == constraint_name
    constraint = next(c for c in model._meta.constraints if c.name == constraint_name)
    table = model._meta.db_table
    columns = ", ".join(f"{table}.{model._meta.get_field(field).column}" for field in constraint.fields)
    message = str(exc)
    return constraint_name in message or message.endswith(f"UNIQUE constraint failed: {columns}")


def violates_same_owner(exc: IntegrityError) -> bool:
    """Did `exc` come from a rule that a row and the rows it points at have one owner?

    PostgreSQL only: the composite foreign keys `<table>_<fk>_same_owner_fk` (study/0009, SQLSTATE 23503, raised
    at commit) and the link triggers `<table>_same_owner_chk` (study/0007, 23514).
    """
    name = violated_constraint(exc) or ""
    return name.endswith(("_same_owner_fk", "_same_owner_chk"))


class ApiError(exceptions.APIException):
    """An error with a stable `error_code` (its `default_code`) and optional extra body fields."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"
    default_detail = "Invalid request."

    def __init__(self, detail: str | None = None, **extra) -> None:
        super().__init__(detail=detail, code=self.default_code)
        self.extra = extra


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state."


class AssetAlreadyLinked(Conflict):
    default_code = "asset_already_linked"
    default_detail = "This document is already linked to the session with that type and role."


class DuplicateCard(Conflict):
    default_code = "duplicate_card"
    default_detail = "A card with the same fact already exists."


class QuizInProgress(Conflict):
    default_code = "quiz_in_progress"
    default_detail = "A quiz session is already in progress for this topic."


class InvalidInput(ApiError):
    default_code = "invalid_input"
    default_detail = "The input is not acceptable."


class EmptyFile(ApiError):
    default_code = "empty_file"
    default_detail = "The uploaded file is empty."


class UnsupportedType(ApiError):
    default_code = "unsupported_type"
    default_detail = "This file type is not supported here."


class NotReviewed(ApiError):
    default_code = "not_reviewed"
    default_detail = "The card has not been reviewed yet."


class BodyTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"
    default_detail = "The request body is too large."


class UploadTooLarge(RequestDataTooBig):
    """An upload over DOCUMENT_MAX_BYTES, refused by the upload handler while Django parses the body: a Django
    exception, not a DRF one, as the admin's forms (and the CSRF check before them) parse bodies outside DRF too.
    DRF's views answer it 413 `body_too_large` with its message (exception_handler), the others 413 as well
    (studyserver.health.bad_request)."""


# What a request Django refused while reading it is told, in DRF's views and outside them (health.bad_request);
# Django's own messages can name settings and paths.
REFUSED_REQUESTS = {TooManyFieldsSent: "Too many fields.", TooManyFilesSent: "Too many files.",  # (100 file parts)
                    DisallowedHost: "This server does not answer for that host name."}


def refused_request_detail(exc: BaseException) -> str | None:
    return next((text for cls, text in REFUSED_REQUESTS.items() if isinstance(exc, cls)), None)


def body_too_large(exc: RequestDataTooBig) -> BodyTooLarge:
    """The 413 of a body Django refused to read: an upload's says its limit, DATA_UPLOAD_MAX_MEMORY_SIZE's is
    Django's own and says nothing worth passing on."""
    return BodyTooLarge(str(exc) if isinstance(exc, UploadTooLarge) else None)


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "Not found."


class ServiceUnavailable(ApiError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"
    default_detail = "This service is not available."


class BackendUnavailable(ServiceUnavailable):
    """The database or the file store failed under a request (lost connection, statement cancelled, disk full):
    the request's transaction is rolled back; worth retrying shortly (DRF sends `wait` as Retry-After)."""

    default_detail = "The server's database or file store failed; please retry."
    wait = 5


# DRF's own exceptions, mapped to our stable codes.
_DRF_CODES = {
    exceptions.ParseError: "invalid",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _flatten(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _flatten(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _flatten(value)]
    return [str(detail)]


def field_errors(detail, prefix: str = "") -> dict[str, list[str]]:
    """Field → list of messages, as documented; nested errors get dotted keys (`attempts.0.selected_choice`).
    Also the shape of each bad row of a question import, and what the question admin shows of the API's rules."""
    if not isinstance(detail, dict):
        if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
            detail = {str(i): item for i, item in enumerate(detail) if item}
        else:
            return {prefix or "non_field_errors": _flatten(detail)}
    errors: dict[str, list[str]] = {}
    for key, value in detail.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        for field, messages in field_errors(value, path).items():
            errors.setdefault(field, []).extend(messages)
    return errors


def error_body(error_code: str, detail: str, **extra) -> dict:
    return {"error_code": error_code, "detail": detail, **extra}


_RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
# PostgreSQL's error classes of a server that is away or overloaded, not of a statement that is wrong: connection
# exception, insufficient resources (disk full, out of memory, too many connections), operator intervention
# (statement cancelled or timed out, shutdown), system error.
_UNAVAILABLE_SQLSTATE_CLASSES = {"08", "53", "57", "58"}
# lock_not_available: a `lock_timeout` an operator set ran out while a statement waited for a row other work held
# (busy, as a statement timeout is; the rest of class 55 says an object is in the wrong state).
_UNAVAILABLE_SQLSTATES = {"55P03"}
# SQLite's primary result codes of the same kind: busy, locked, disk I/O error, disk full.
_UNAVAILABLE_SQLITE_CODES = {5, 6, 10, 13}


def backend_unavailable(exc: BaseException) -> bool:
    """Whether a database error says the database is away or busy (worth a retry), not that a statement is wrong:
    the connection failed or was lost, PostgreSQL is out of resources, cancelled the statement or gave up waiting
    for a lock (`lock_timeout`), SQLite is busy, locked, full or failed to read or write. SQLite also reports "no
    such table" and other mistakes as OperationalError: those stay errors (500)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if hasattr(cause, "sqlstate"):  # psycopg: no SQLSTATE when the connection itself failed
        return (cause.sqlstate is None or cause.sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
                or cause.sqlstate in _UNAVAILABLE_SQLSTATES)
    code = getattr(cause, "sqlite_errorcode", None)  # SQLite (extended codes carry the primary one in the low byte)
    return code is not None and code & 0xFF in _UNAVAILABLE_SQLITE_CODES


def lost_concurrency_race(exc: BaseException) -> bool:
    """Whether a database error says the transaction lost a deadlock or a serialization race with a concurrent one:
    PostgreSQL rolled it back, nothing was written, and the same work run again may go through."""
    return isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) in _RETRYABLE_SQLSTATES


def transient_database_error(exc: BaseException) -> bool:
    """Whether a database error may go away if the same work runs again: a lost concurrency race, or the database
    away or busy (backend_unavailable). Not a statement the database refuses each time it runs: PostgreSQL's
    program limit exceeded (SQLSTATE class 54), SQLite's "no such table" are OperationalErrors as well."""
    return lost_concurrency_race(exc) or backend_unavailable(exc)


def file_missing(exc: BaseException) -> bool:
    """Whether an error of the file store says the stored file is not there: FileNotFoundError (the filesystem;
    django-storages' S3 backend raises it for a 404 on open or size), or S3's own "no such key" on a later read (an
    object removed between the open's HEAD and the GET). Not a missing bucket (also a 404): the store is broken."""
    if isinstance(exc, FileNotFoundError):
        return True
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey"}


def file_store_failed(exc: BaseException) -> bool:
    """Whether an error reading a stored file is the file store's (not the request's, not a bug; worth a retry once
    it is mended), a missing file aside: any other OSError (permission, I/O error, too many open files, a timeout)
    or an error of boto3, botocore or s3transfer (S3 unreachable, timing out, throttling, refusing the keys)."""
    if file_missing(exc):
        return False
    if isinstance(exc, OSError):
        return True
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError
    from s3transfer.exceptions import RetriesExceededError, S3DownloadFailedError

    return isinstance(exc, BotoCoreError | ClientError | Boto3Error | RetriesExceededError | S3DownloadFailedError)


def exception_handler(exc, context):
    """DRF EXCEPTION_HANDLER: every error as `{"error_code", "detail", ...}`."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, IntegrityError) and violates_same_owner(exc):
        # A row of another user got past the scoped lookups (a bug, or a row changed meanwhile): to this user it
        # does not exist (SPEC "Ownership": 404, never 403); nothing was saved.
        logger.warning("same-owner rule refused a write, answered 404: %s", exc)
        exc = NotFound()
    elif isinstance(exc, IntegrityError) and getattr(exc.__cause__, "sqlstate", None) == "23514":
        # A check the service validates before writing: most likely a row an older version stored breaks it (the
        # write carried it along). The operator can list and mend such rows.
        logger.error("check constraint %s refused a write, answered 409: a row stored by an older version may break "
                     "it (manage.py validate_constraints --dry-run lists them; README \"Upgrading\"): %s",
                     violated_constraint(exc), exc)
        exc = Conflict()
    elif isinstance(exc, IntegrityError):
        # A constraint caught a race the service did not anticipate: a conflict, never a 500.
        logger.warning("unhandled IntegrityError turned into 409: %s", exc)
        exc = Conflict()
    elif isinstance(exc, DataError):
        # A value the database cannot hold (out of range, NUL in JSON) that validation let through.
        logger.warning("DataError turned into 400: %s", exc)
        exc = exceptions.ValidationError({"non_field_errors": ["A value is out of range or malformed."]})
    elif lost_concurrency_race(exc):
        # Lost a deadlock or serialization race with a concurrent request: nothing was written; retry.
        logger.warning("transaction lost a concurrency race, answered 409: %s", exc)
        exc = Conflict("A concurrent change got in the way; nothing was saved. Please retry.")
    elif backend_unavailable(exc):
        # The database is away or busy (connection lost, statement cancelled or timed out, out of space): not the
        # request's fault. A write that failed before its commit kept nothing (its body is read inside it).
        logger.error("database failure answered 503: %s", exc, exc_info=exc)
        exc = BackendUnavailable()
    elif isinstance(exc, UnicodeError):
        exc = exceptions.ValidationError({"non_field_errors": ["The text is not valid Unicode."]})
    elif isinstance(exc, RequestDataTooBig):
        exc = body_too_large(exc)
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = exceptions.ValidationError({"non_field_errors": [refused_request_detail(exc)]})

    response = drf_exception_handler(exc, context)
    if response is None:
        return None

    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", "Invalid input.", errors=field_errors(exc.detail))
        response.status_code = status.HTTP_400_BAD_REQUEST
        return response

    if isinstance(exc, ApiError):
        code = exc.default_code
    else:
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail
    message = " ".join(_flatten(detail)) if isinstance(detail, (list, dict)) else str(detail)
    extra = getattr(exc, "extra", {})
    if code == "invalid" and "errors" not in extra:
        # API.md: an `invalid` answer carries `errors`; a body that could not be parsed, or a rule about the
        # request as a whole, has no field to name.
        extra = {**extra, "errors": field_errors(detail)}  # {"non_field_errors": [...]}
    response.data = error_body(code, message, **extra)
    return response
