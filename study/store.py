"""What a failure of the file store means to the tasks that read or delete stored files: the whole store, for a
while (retried later), or this one file."""

# S3 (django-storages' boto3 backend) answers these when it is busy or failing for a while: worth a retry.
_S3_BUSY_CODES = frozenset({"SlowDown", "Throttling", "RequestTimeout", "InternalError", "ServiceUnavailable"})


class StorageUnavailable(ConnectionError):
    """The file store could not be reached or answered with a server error: the task retries later."""


def storage_unavailable(exc: Exception) -> bool:
    """Is this a failure of the file store that may pass (no connection, a timeout, a 5xx or throttling), rather
    than one of the file? botocore's errors do not derive from the built-in ConnectionError / TimeoutError, and a
    read that s3transfer (boto3's downloads, which django-storages uses) gave up retrying is its own error."""
    from boto3.exceptions import RetriesExceededError as Boto3RetriesExceeded
    from botocore.exceptions import ClientError, HTTPClientError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from s3transfer.exceptions import RetriesExceededError as TransferRetriesExceeded

    if isinstance(exc, BotoConnectionError | HTTPClientError | Boto3RetriesExceeded | TransferRetriesExceeded):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") in _S3_BUSY_CODES
    return False


def raise_if_store_down(exc: Exception) -> None:
    """Raise a failure of the whole store as one the tasks retry (a built-in ConnectionError or TimeoutError as it
    is, a busy or unreachable S3 as StorageUnavailable); return for a failure of the file alone."""
    if isinstance(exc, ConnectionError | TimeoutError):
        raise exc
    if storage_unavailable(exc):
        raise StorageUnavailable(f"the file store is unavailable: {type(exc).__name__}: {exc}") from exc
