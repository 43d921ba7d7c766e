"""Documents: uploaded files (assets) with their extracted text."""

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact

from .base import PostgresGinIndex, SoftDeleteModel, TimestampedModel, enum_check


class ExtractStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class Document(TimestampedModel, SoftDeleteModel):
    user = models.ForeignKey(  # no index of its own: it leads study_doc_user_created_idx
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="documents", db_index=False
    )
    title = models.CharField(max_length=255)
    file = models.FileField(upload_to="documents/%Y/%m/", max_length=500)
    original_name = models.CharField(max_length=255)
    file_format = models.CharField(max_length=20, help_text="Lower-case extension, e.g. pdf, png, txt.")
    content_type = models.CharField(max_length=100, blank=True, default="")
    file_size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Stored as ",tag1,tag2," so one LIKE finds a whole tag on every database.
    tags_text = models.CharField(max_length=1000, blank=True, default="")
    TAGS_INPUT_MAX_LENGTH = 900  # the comma-separated tags a user types: stored with their framing commas, they fit
    extract_status = models.CharField(max_length=10, choices=ExtractStatus.choices, default=ExtractStatus.PENDING)
    extract_error = models.TextField(blank=True, default="")
    extracted_text = models.TextField(blank=True, default="")
    extracted_at = models.DateTimeField(null=True, blank=True)
    # Extraction runs started on this pending document that never ended: a worker killed mid-run (its hard time
    # limit, out of memory) leaves its count behind. Past EXTRACT_MAX_INTERRUPTED the document fails instead of
    # being sent again by the sweep every half hour for good. Back to 0 when a run ends or the extraction is retried.
    extract_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            enum_check("extract_status", ExtractStatus, "study_document_extract_status_chk"),
            models.CheckConstraint(condition=models.Q(file_size__gt=0), name="study_document_file_size_chk"),
            # The upload stores the file's sha256 in hex.
            models.CheckConstraint(condition=Exact(Length("sha256"), 64), name="study_document_sha256_chk"),
            # An extraction that ended (done, failed, skipped) recorded when; a retry makes the document pending again
            # and keeps the time of the last run.
            models.CheckConstraint(
                condition=models.Q(extract_status=ExtractStatus.PENDING) | models.Q(extracted_at__isnull=False),
                name="study_document_extracted_at_chk",
                violation_error_message="An extraction that ended (done, failed or skipped) has its time.",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="study_doc_user_created_idx"),
            models.Index(fields=["extract_status"], name="study_document_extract_idx"),
            PostgresGinIndex(
                SearchVector("extracted_text", config="simple"), name="study_document_text_gin_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def tags(self) -> list[str]:
        return [t for t in self.tags_text.split(",") if t]

    @tags.setter
    def tags(self, values: list[str]) -> None:
        cleaned = [v.strip().replace(",", " ") for v in values if v and v.strip()]
        self.tags_text = f",{','.join(dict.fromkeys(cleaned))}," if cleaned else ""
