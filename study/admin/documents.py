"""Admin for documents (with extract status)."""

from django.contrib import admin

from study.models import Document


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "file_format", "file_size", "extract_status", "user", "created_at", "deleted_at")
    list_filter = ("extract_status", "file_format", ("deleted_at", admin.EmptyFieldListFilter), "user")
    search_fields = ("title", "original_name", "sha256")
    raw_id_fields = ("user",)
    readonly_fields = ("sha256", "file_size", "extracted_at", "created_at", "updated_at")
    ordering = ("-created_at", "-id")
