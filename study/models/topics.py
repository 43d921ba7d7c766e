"""Study topics (workspaces) and their links to documents."""

from django.conf import settings
from django.db import models

from .base import SoftDeleteModel, TimestampedModel


class StudyTopic(TimestampedModel, SoftDeleteModel):
    user = models.ForeignKey(  # no index of its own: it leads study_topic_user_created_idx
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_topics", db_index=False
    )
    name = models.CharField(max_length=200)
    study_type = models.CharField(max_length=50, blank=True, default="certification")
    description = models.TextField(blank=True, default="")
    documents = models.ManyToManyField("study.Document", through="study.TopicDocument", related_name="topics")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(deleted_at__isnull=True),
                name="study_studytopic_name_active_uniq",
            ),
            models.CheckConstraint(condition=~models.Q(name=""), name="study_studytopic_name_chk",
                                   violation_error_message="A topic needs a name."),
            # The target of the rows' (study_topic_id, user_id) foreign keys: a topic's questions, quiz sessions,
            # study sessions and cards are its owner's (PostgreSQL, migration study/0009).
            models.UniqueConstraint(fields=["id", "user"], name="study_studytopic_id_user_uniq"),
        ]
        indexes = [models.Index(fields=["user", "-created_at"], name="study_topic_user_created_idx")]

    def __str__(self) -> str:
        return self.name


class TopicDocument(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    topic = models.ForeignKey(  # no index of its own: it leads study_topicdocument_topic_document_uniq
        StudyTopic, on_delete=models.CASCADE, related_name="document_links", db_index=False
    )
    document = models.ForeignKey("study.Document", on_delete=models.CASCADE, related_name="topic_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["topic", "document"], name="study_topicdocument_topic_document_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.topic_id} ↔ {self.document_id}"
