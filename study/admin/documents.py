"""Admin for documents: uploaded through the upload service, extract status and error, a "retry extraction"
action, and the soft delete."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html

from study.api.common import NFCFormCharField
from study.downloads import attachment_response
from study.models import Document
from study.models.documents import ExtractStatus
from study.selectors.documents import document_file_open
from study.services.documents import document_delete, document_upload, parse_tags, uploads_removed_unless_committed
from study.services.extraction import documents_reset_for_retry
from study.tasks import extract_document
from study.uploads import checked_upload_size, upload_base_name
from studyserver.admin import too_many_for_one_action
from studyserver.celery import enqueue_on_commit
from studyserver.errors import ApiError, BackendUnavailable, NotFound

from .base import (
    OWNER_FILTER,
    NFCSearchMixin,
    OwnerSetOnceMixin,
    ShownValuesForm,
    SoftDeleteModelAdmin,
    take_row,
)

# What the file and its extraction hold: derived from the stored file by the upload and the extraction, never typed.
# (A stale form posted after the extraction finished would have put the text back to "pending" and empty, and a new
# file would have kept the old text, size and hash; "Retry extraction" is the way to extract again.)
FILE_FIELDS = ("stored_file", "original_name", "file_format", "content_type", "file_size", "sha256")
EXTRACT_FIELDS = ("extract_status", "extract_error", "extract_attempts", "extracted_text", "extracted_at")
TIMESTAMPS = ("created_at", "updated_at", "deleted_at")


def tags_field() -> forms.CharField:
    """The tags as the API takes them: one comma-separated text (parse_tags), not the stored ",a,b," form."""
    return NFCFormCharField(required=False, max_length=Document.TAGS_INPUT_MAX_LENGTH, help_text="Comma-separated.")


class DocumentAddForm(forms.ModelForm):
    """The upload form of the API (a file, an optional title, comma-separated tags), checked as the API checks it:
    the file is stored, hashed and queued for extraction by document_upload."""

    tags = tags_field()

    class Meta:
        model = Document
        fields = ("user", "file", "title")
        field_classes = {"title": NFCFormCharField}  # stored NFC, as the API stores it: max_length counts that

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["title"].help_text = "The file's name when empty."

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            upload_base_name(upload.name)
            checked_upload_size(upload)
        except ApiError as exc:
            raise forms.ValidationError(str(exc.detail)) from exc
        return upload


class DocumentChangeForm(ShownValuesForm):
    """The title and the tags (typed as in the add form and the API); the rest is read-only."""

    tags = tags_field()

    class Meta:
        model = Document
        fields = ("title",)
        field_classes = {"title": NFCFormCharField}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tags"].initial = ", ".join(self.instance.tags)

    def save(self, commit: bool = True) -> Document:
        self.instance.tags = parse_tags(self.cleaned_data["tags"])
        return super().save(commit)


@admin.register(Document)
class DocumentAdmin(NFCSearchMixin, OwnerSetOnceMixin, SoftDeleteModelAdmin):
    list_display = ("title", "file_format", "file_size", "extract_status", "short_error", "user", "created_at",
                    "deleted_at")
    list_filter = ("extract_status", "file_format", ("deleted_at", admin.EmptyFieldListFilter), OWNER_FILTER)
    search_fields = ("title", "original_name", "sha256")
    raw_id_fields = ("user",)
    form = DocumentChangeForm
    fields = ("user", "title", "tags", *FILE_FIELDS, *EXTRACT_FIELDS, *TIMESTAMPS)
    readonly_fields = (*FILE_FIELDS, *EXTRACT_FIELDS, *TIMESTAMPS)  # title and tags stay editable
    ordering = ("-created_at", "-id")
    changelist_defer = ("extracted_text",)  # up to EXTRACT_MAX_CHARS a document
    actions = ["retry_extraction", "soft_delete_selected"]

    def get_form(self, request: HttpRequest, obj: Document | None = None, **kwargs) -> type[forms.ModelForm]:
        kwargs["form"] = DocumentAddForm if obj is None else DocumentChangeForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Document | None = None) -> tuple[str, ...]:
        return ("user", "file", "title", "tags") if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Document | None = None) -> tuple[str, ...]:
        return super().get_readonly_fields(request, obj) if obj is not None else ()

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        # Django's transaction around the form also writes the history entry after the upload's row: a failure
        # there rolls the row back, and the stored file must go with it.
        with uploads_removed_unless_committed():
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Document, form: forms.ModelForm, change: bool) -> None:
        if change:  # the title and tags the page changed; the extraction may be writing the rest meanwhile
            columns = {"title": "title", "tags": "tags_text"}  # (`tags` is read and written through `tags_text`)
            changed = [columns[name] for name in form.changed_data if name in columns]
            if changed:
                obj.save(update_fields=[*changed, "updated_at"])
            return
        data = form.cleaned_data
        document = document_upload(user=data["user"], upload=data["file"], title=data["title"] or None,
                                   tags=parse_tags(data["tags"]))
        take_row(obj, document)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_download"
        return [
            path("<path:object_id>/download/", self.admin_site.admin_view(self.download_view), name=name),
            *super().get_urls(),
        ]

    @admin.display(description="file")
    def stored_file(self, obj: Document) -> str:
        """A link that downloads the file through the admin (MEDIA_URL is not served): staff can read any user's."""
        if not obj.file:
            return "-"
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a> ({} bytes)', url, obj.original_name or obj.file.name, obj.file_size)

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The stored file as an attachment, as the API sends it to its owner; a file missing from the store or a
        failing store is a message on the document's page, not an error page."""
        document = self.get_object(request, object_id)
        # The permission first, as Django's change page checks it: a 403 either way tells no one which ids exist.
        if not self.has_view_permission(request, document):
            raise PermissionDenied
        if document is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        try:
            handle, _size = document_file_open(document=document)
        except (NotFound, BackendUnavailable) as exc:
            self.message_user(request, f"The file cannot be downloaded: {exc.detail}", messages.ERROR)
            return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[document.pk]))
        return attachment_response(document, handle)

    @admin.display(description="extract error")
    def short_error(self, obj: Document) -> str:
        return obj.extract_error[:80]

    @admin.action(description="Retry extraction of the selected documents", permissions=["change"])
    def retry_extraction(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        # Counted before the reset: a list filtered on "failed" no longer holds the rows afterwards.
        selected = queryset.count()
        if too_many_for_one_action(self, request, selected):
            return
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
        left_alone = selected - len(pending)
        if left_alone:
            self.message_user(
                request, f"{left_alone} document(s) left as they are (already extracted or deleted).", messages.INFO
            )

    def soft_delete(self, obj: Document) -> bool:
        return document_delete(document=obj)
