"""Writes of study topics: create, update, soft delete, and their links to documents."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from publishing.models import PublishKind
from publishing.services import publish_request, publish_request_many
from study.models import Document, StudyTopic, TopicDocument
from studyserver.errors import Conflict, NotFound

_DUPLICATE_NAME = "An active topic with this name already exists."


def topic_get_live(*, user: AbstractBaseUser, topic_id: int, lock: bool = False) -> StudyTopic:
    """The user's live topic `topic_id`, or 404. `lock`: kept live until the commit. The row lock is `FOR NO KEY
    UPDATE`: it waits for (and holds off) a delete, which is an update, while rows being filed under the topic by
    other requests (whose foreign-key checks take `FOR KEY SHARE`) go on without waiting."""
    queryset = StudyTopic.objects.live().filter(user=user)
    if lock:
        queryset = queryset.select_for_update(no_key=True)
    topic = queryset.filter(pk=topic_id).first()
    if topic is None:
        raise NotFound("Study topic not found.")
    return topic


def topic_create(
    *, user: AbstractBaseUser, name: str, study_type: str = "certification", description: str = ""
) -> StudyTopic:
    """Create a topic; a duplicate active name (also under a race) → 409 conflict."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                topic = StudyTopic.objects.create(
                    user=user, name=name, study_type=study_type, description=description
                )
        except IntegrityError:
            raise Conflict(_DUPLICATE_NAME) from None
        publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
    return topic


def topic_update(*, topic: StudyTopic, data: dict) -> StudyTopic:
    """Change only the fields in `data` (name, study_type, description); a rename may conflict.

    A soft-deleted topic → 404, unchanged (deleted since the caller read it, or before).
    """
    fields = [f for f in ("name", "study_type", "description") if f in data]
    with transaction.atomic():
        # The save below writes by pk whatever `deleted_at` is, so lock the row while it is still live:
        # a concurrent soft delete then either waits for this update or has committed and wins.
        still_live = StudyTopic.objects.live().select_for_update(no_key=True).filter(pk=topic.pk)
        if not still_live.exists():
            raise NotFound("Study topic not found.")
        for field in fields:
            setattr(topic, field, data[field])
        try:
            with transaction.atomic():
                topic.save(update_fields=[*fields, "updated_at"])
        except IntegrityError:
            raise Conflict(_DUPLICATE_NAME) from None
        if {"name", "study_type"} & set(fields):
            publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
    return topic


def topic_delete(*, topic: StudyTopic) -> bool:
    """Soft delete: sessions, questions and links stay; the topic and its questions leave lists and the feed.

    Whether this call deleted it: False when it was deleted already (a concurrent delete), which changes nothing.
    """
    now = timezone.now()
    with transaction.atomic():
        if not topic.update_if_live(deleted_at=now, updated_at=now):
            return False
        publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
        # Its questions are gone for the learner (lists, quizzes, ingest); the viewer gets their tombstones.
        question_ids = topic.questions.filter(deleted_at__isnull=True).values_list("id", flat=True)
        publish_request_many(kind=PublishKind.STUDY_QUESTION, source_ids=list(question_ids))
    return True


def topic_document_link(*, topic: StudyTopic, document: Document) -> TopicDocument:
    """Link a document to a topic; already linked → 409 conflict. The document, then the topic (the order session
    links and extraction lock in), is locked live until the commit: a delete of either committed meanwhile makes
    this a 404, not a new link to a deleted document or on a deleted topic."""
    with transaction.atomic():
        live = (Document.objects.select_for_update(no_key=True).filter(pk=document.pk, deleted_at__isnull=True)
                .values_list("pk", flat=True).first())
        if live is None:
            raise NotFound("Document not found.")
        topic_get_live(user=topic.user, topic_id=topic.pk, lock=True)
        try:
            with transaction.atomic():
                return TopicDocument.objects.create(user=topic.user, topic=topic, document=document)
        except IntegrityError:
            raise Conflict("The document is already linked to this topic.") from None


def topic_document_unlink(*, topic: StudyTopic, document_id: int) -> None:
    """Remove the link (the document is kept); not linked → 404."""
    with transaction.atomic():
        deleted, _ = TopicDocument.objects.filter(topic=topic, document_id=document_id).delete()
    if not deleted:
        raise NotFound("The document is not linked to this topic.")
