"""Which errors the project's Celery tasks retry with backoff: the one list both apps' tasks are given."""

from django.db import InterfaceError, OperationalError

# A database connection lost or refused (InterfaceError: psycopg's "connection already closed"), a statement the
# database failed, a network error or timeout (ExplainerDown, StorageUnavailable are ConnectionErrors).
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
