"""The published read model for the offline viewer, and the outbox that feeds it."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class PublishKind(models.TextChoices):
    STUDY_TOPIC = "study_topic"
    STUDY_QUESTION = "study_question"
    STUDY_CARD = "study_card"
    STUDY_CARD_PROGRESS = "study_card_progress"


class Published(models.Model):
    # Unique through Meta's constraint: unique=True would add, on PostgreSQL, an index for LIKE that no lookup uses
    # (pub_ids are looked up whole) and every write of a row pays for (migration 0008).
    pub_id = models.CharField(max_length=32, editable=False)
    kind = models.CharField(max_length=32, choices=PublishKind.choices)
    source_id = models.BigIntegerField()
    # A deleted user's rows stay (as tombstones, see signals.py): deleting them would let seq go back.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    payload = models.JSONField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    seq = models.BigIntegerField(unique=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # The feed item's finished JSON (publishing.feed.feed_item_json), written with the row.
    item = models.TextField(editable=False)

    class Meta:
        verbose_name_plural = "published"
        constraints = [
            models.UniqueConstraint(fields=["pub_id"], name="publishing_published_pub_id_key"),
            models.UniqueConstraint(fields=["kind", "source_id"], name="publishing_published_kind_source_uniq"),
            models.CheckConstraint(
                condition=models.Q(kind__in=PublishKind.values), name="publishing_published_kind_chk"
            ),
            models.CheckConstraint(
                condition=models.Q(deleted=False) | models.Q(payload__isnull=True),
                name="publishing_published_tombstone_chk",
            ),
            models.CheckConstraint(
                condition=models.Q(deleted=True) | models.Q(payload__isnull=False),
                name="publishing_published_payload_chk",
            ),
            models.CheckConstraint(condition=~models.Q(item=""), name="publishing_published_item_chk"),
            # The drain numbers rows from the top seq + 1; a reader starts at after=0, which a seq 0 would never pass.
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="publishing_published_seq_chk"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.source_id} seq {self.seq}"


class PublishOutbox(models.Model):
    kind = models.CharField(max_length=32, choices=PublishKind.choices)
    source_id = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "publish outbox"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=PublishKind.values), name="publishing_publishoutbox_kind_chk"
            ),
        ]
        indexes = [models.Index(fields=["created_at", "id"], name="publishing_outbox_created_idx")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.source_id}"
