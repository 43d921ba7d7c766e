"""Writes of the publishing app: recording publish requests in the outbox."""

from django.conf import settings

from .models import PublishKind, PublishOutbox


def publish_request(*, kind: str, source_id: int) -> None:
    """Record in the outbox, inside the caller's transaction, that (kind, source_id) changed.

    The drain (publishing.tasks) projects the current state after commit; recording
    is gated by STUDY_PUBLISH_ENABLED.
    """
    if not settings.STUDY_PUBLISH_ENABLED:
        return
    PublishOutbox.objects.create(kind=PublishKind(kind), source_id=source_id)


def publish_request_many(*, kind: str, source_ids) -> None:
    """The bulk form of publish_request (one INSERT)."""
    if not settings.STUDY_PUBLISH_ENABLED:
        return
    kind = PublishKind(kind)
    PublishOutbox.objects.bulk_create([PublishOutbox(kind=kind, source_id=sid) for sid in source_ids])
