"""API of documents: streamed multipart upload, list with filters, soft delete, safe download."""

from django.db.models import Value
from django.db.models.functions import StrIndex
from django.http import FileResponse
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from study.downloads import attachment_response
from study.models import Document
from study.selectors.documents import document_file_open, documents_live
from study.services import documents as document_services
from study.textnorm import nfc
from studyserver.errors import NotFound, error_body
from studyserver.parsers import FormParser, JSONParser, MultiPartParser
from studyserver.ranges import UNSATISFIABLE, FileSlice, byte_range

from .common import (
    FilterSet,
    IdFilter,
    NFCCharField,
    OwnedObjectMixin,
    error_responses,
    id_field,
    multipart_upload,
    retry_after_header,
)


class _NoFormatOverride:
    URL_FORMAT_OVERRIDE = None


class FormatFilterNegotiation(DefaultContentNegotiation):
    """Content negotiation that leaves `?format=` to the list filter (DRF reads it as a renderer name)."""

    settings = _NoFormatOverride()


class FileDownloadNegotiation(BaseContentNegotiation):
    """The download answers with the file whatever `Accept` says (`application/pdf`, `audio/*`): never a 406.

    Errors (404) still render as JSON.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class DocumentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=100000)  # read by multipart_upload
    title = NFCCharField(max_length=255, required=False, allow_blank=True)
    tags = NFCCharField(
        required=False, allow_blank=True, max_length=Document.TAGS_INPUT_MAX_LENGTH, help_text="Comma separated."
    )
    study_topic_id = id_field(required=False, allow_null=True)


class DocumentSerializer(serializers.ModelSerializer):
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = [
            "id", "title", "file_format", "file_size", "sha256", "tags", "extract_status", "extract_error",
            "created_at", "download_url",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, document: Document) -> str:
        path = reverse("document-download", args=[document.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class DocumentDetailSerializer(DocumentSerializer):
    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "extracted_text"]
        read_only_fields = fields


class DocumentFilter(FilterSet):
    format = filters.CharFilter(field_name="file_format", lookup_expr="iexact", max_length=20)
    tag = filters.CharFilter(method="filter_tag", max_length=200)
    study_topic_id = IdFilter(method="filter_topic")
    q = filters.CharFilter(method="filter_q", max_length=255)

    class Meta:
        model = Document
        fields = ["format", "tag", "study_topic_id", "q"]

    def filter_tag(self, queryset, name, value):
        # A whole tag, case-sensitive as tags are stored: STRPOS / INSTR on every database (SQLite's LIKE,
        # behind `contains`, ignores ASCII case). Tags never hold a comma, so a value with one matches nothing.
        tag = nfc(value.strip())
        if "," in tag:
            return queryset.none()
        return queryset.alias(_tag_at=StrIndex("tags_text", Value(f",{tag},"))).filter(_tag_at__gt=0)

    def filter_q(self, queryset, name, value):
        return queryset.filter(title__icontains=nfc(value))

    def filter_topic(self, queryset, name, value):
        return queryset.filter(topic_links__topic_id=value, topic_links__topic__deleted_at__isnull=True)


@extend_schema_view(
    list=extend_schema(summary="List your documents", responses={200: DocumentSerializer, **error_responses(400)}),
    retrieve=extend_schema(responses={200: DocumentDetailSerializer, **error_responses(404)}),
    destroy=extend_schema(responses={204: None, **error_responses(404)}, summary="Soft-delete a document"),
)
class DocumentViewSet(
    OwnedObjectMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = DocumentSerializer
    filterset_class = DocumentFilter
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    content_negotiation_class = FormatFilterNegotiation

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Document.objects.none()
        return documents_live(user=self.request.user)

    def get_serializer_class(self):
        return DocumentDetailSerializer if self.action == "retrieve" else DocumentSerializer

    @extend_schema(
        summary="Upload a document (multipart)",
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: DocumentSerializer, **error_responses(400, 404, 413, 503)},
        parameters=[retry_after_header(503)],
        description="503 `unavailable` (with `Retry-After`) when the file store fails to write the file; nothing "
        "is kept.",
    )
    def create(self, request: Request) -> Response:
        fields, upload = multipart_upload(request, DocumentUploadSerializer)
        document = document_services.document_upload(
            user=request.user,
            upload=upload,
            title=fields.get("title") or None,
            tags=document_services.parse_tags(fields.get("tags")),
            study_topic_id=fields.get("study_topic_id"),
        )
        body = DocumentSerializer(document, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Document) -> None:
        if not document_services.document_delete(document=instance):  # deleted meanwhile by a concurrent request
            raise NotFound()

    @extend_schema(
        summary="Download the file (attachment); one byte range with `Range: bytes=…` (206)",
        responses={
            # The file's own type when it is safe to show (text, PDF, images, audio, video), else octet-stream.
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The file."),
            (206, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The bytes of the `Range` (`Content-Range: bytes first-last/size`)."
            ),
            **error_responses(404, 416, 503),
        },
        parameters=[retry_after_header(503)],
        description="404 `not_found` also when the file is missing from the file store; 503 `unavailable` (with "
        "`Retry-After`) when the file store fails to open or read it.",
    )
    @action(detail=True, methods=["get"], url_path="download", content_negotiation_class=FileDownloadNegotiation)
    def download(self, request: Request, pk: str | None = None) -> FileResponse:
        document = self.get_object()
        handle, size = document_file_open(document=document)
        # If-Range would ask for the range only if the file is unchanged; with no validators to compare, the
        # whole file is the answer (RFC 9110 §13.1.5).
        wanted = None if "HTTP_IF_RANGE" in request.META else byte_range(request.META.get("HTTP_RANGE"), size)
        if wanted == UNSATISFIABLE:
            handle.close()
            return Response(
                error_body("range_not_satisfiable", f"The file has {size} bytes."),
                status=status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE,
                headers={"Content-Range": f"bytes */{size}"},
            )
        response = attachment_response(document, handle if wanted is None else FileSlice(handle, *wanted))
        if wanted is not None:
            first, last = wanted
            response.status_code = status.HTTP_206_PARTIAL_CONTENT
            response["Content-Range"] = f"bytes {first}-{last}/{size}"
            response["Content-Length"] = str(last - first + 1)
        response["Accept-Ranges"] = "bytes"
        return response
