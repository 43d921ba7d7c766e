"""Admin for documents: extract status and error, a "retry extraction" action, and the soft delete."""

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from study.models import Document
from study.models.documents import ExtractStatus
from study.services.documents import document_delete
from study.services.extraction import documents_reset_for_retry
from study.tasks import extract_document
from studyserver.celery import enqueue_on_commit

from .base import OwnerSetOnceMixin, SoftDeleteModelAdmin


@admin.register(Document)
class DocumentAdmin(OwnerSetOnceMixin, SoftDeleteModelAdmin):
    list_display = ("title", "file_format", "file_size", "extract_status", "short_error", "user", "created_at",
                    "deleted_at")
    list_filter = ("extract_status", "file_format", ("deleted_at", admin.EmptyFieldListFilter), "user")
    search_fields = ("title", "original_name", "sha256")
    raw_id_fields = ("user",)
    readonly_fields = ("sha256", "file_size", "extract_error", "extracted_at", "created_at", "updated_at",
                       "deleted_at")
    ordering = ("-created_at", "-id")
    actions = ["retry_extraction", "soft_delete_selected"]

    @admin.display(description="extract error")
    def short_error(self, obj: Document) -> str:
        return obj.extract_error[:80]

    @admin.action(description="Retry extraction of the selected documents")
    def retry_extraction(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        with transaction.atomic():
            ids = list(queryset.filter(deleted_at__isnull=True).values_list("id", flat=True))
            documents_reset_for_retry(document_ids=ids)
            # Documents already pending are queued again too: a lost enqueue leaves nothing else to kick them.
            pending = list(
                Document.objects.filter(pk__in=ids, extract_status=ExtractStatus.PENDING).values_list("id", flat=True)
            )
            for document_id in pending:
                enqueue_on_commit(extract_document, document_id)
        self.message_user(request, f"Extraction queued for {len(pending)} document(s).", messages.SUCCESS)
        left_alone = queryset.count() - len(pending)
        if left_alone:
            self.message_user(
                request, f"{left_alone} document(s) left as they are (already extracted or deleted).", messages.INFO
            )

    def soft_delete(self, obj: Document) -> bool:
        return document_delete(document=obj)
