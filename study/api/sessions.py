"""API of study sessions: CRUD with filters and orderings, the groups tree, assets and PNG snapshots."""

from datetime import UTC

from django import forms
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from study.models import SessionAsset, StudySession
from study.models.sessions import AssetRole, AssetType, ReviewState, SessionMode, StudyType
from study.selectors.sessions import (
    live_assets,
    session_assets_attach,
    session_groups,
    sessions_page_json,
    sessions_with_assets,
)
from study.services import sessions as session_services
from studyserver.parsers import FormParser, JSONParser, MultiPartParser
from studyserver.sqljson import JsonTextResponse, json_body_wanted
from studyserver.times import EARLIEST_TIME

from .common import (
    INT_MAX,
    INT_MIN,
    FilterSet,
    IdFilter,
    JSONObjectField,
    NFCCharField,
    NFCCharFilter,
    OwnedObjectMixin,
    error_responses,
    id_field,
    multipart_upload,
    path_id,
    path_id_parameter,
    retry_after_header,
)

CREATE_FIELDS = [
    "study_type", "certification", "language_code", "learning_level", "subject", "topic", "source_text",
    "source_page", "mode", "prompt_question", "expected_answer", "metadata", "target_count", "canvas_width",
    "canvas_height", "strokes_json",
]  # fmt: skip
PATCH_ONLY_FIELDS = ["repetition_count", "ocr_text", "user_corrected_text", "review_state", "next_review_at"]
READ_ONLY_FIELDS = [
    "id", "user_id", "schema_version", "ai_summary", "last_quiz_at", "correct_count", "incorrect_count",
    "assets", "created_at", "updated_at",
]  # fmt: skip


class SessionAssetSerializer(serializers.ModelSerializer):
    document_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = SessionAsset
        fields = ["id", "document_id", "asset_type", "role", "sort_order", "created_at"]
        read_only_fields = fields


class StudySessionSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    study_topic_id = serializers.IntegerField(read_only=True, allow_null=True)
    metadata = JSONObjectField(read_only=True)
    strokes_json = JSONObjectField(read_only=True)
    assets = SessionAssetSerializer(many=True, read_only=True)

    class Meta:
        model = StudySession
        fields = [*READ_ONLY_FIELDS[:2], *CREATE_FIELDS, "study_topic_id", *PATCH_ONLY_FIELDS, *READ_ONLY_FIELDS[2:]]
        read_only_fields = fields


LIST_FIELDS = StudySessionSerializer.Meta.fields
_COLUMNS = [name for name in LIST_FIELDS if name != "assets"]
_DATETIME_FIELDS = frozenset({"next_review_at", "last_quiz_at", "created_at", "updated_at"})
_DATETIME = serializers.DateTimeField()


def _asset_body(asset: dict) -> dict:
    """SessionAssetSerializer's output for an asset row."""
    return {
        "id": asset["id"],
        "document_id": asset["document_id"],
        "asset_type": asset["asset_type"],
        "role": asset["role"],
        "sort_order": asset["sort_order"],
        "created_at": _DATETIME.to_representation(asset["created_at"]),
    }


def session_body(row: dict) -> dict:
    """StudySessionSerializer's output for a session row with `assets` (same keys, order and formats)."""
    body = {}
    for name in LIST_FIELDS:
        if name == "assets":
            body[name] = [_asset_body(asset) for asset in row["assets"]]
        elif name in _DATETIME_FIELDS:
            body[name] = _DATETIME.to_representation(row[name])
        else:
            body[name] = row[name]
    return body


class StudySessionCreateSerializer(serializers.ModelSerializer):
    # Stored NFC (session_services.NFC_FIELDS), normalised here so that max_length counts what is stored.
    certification = NFCCharField(max_length=200, required=False, allow_blank=True)
    language_code = NFCCharField(max_length=20, required=False, allow_blank=True)
    learning_level = NFCCharField(max_length=50, required=False, allow_blank=True)
    subject = NFCCharField(max_length=200, required=False, allow_blank=True)
    topic = NFCCharField(max_length=200, required=False, allow_blank=True)
    metadata = JSONObjectField(required=False)
    strokes_json = JSONObjectField(required=False)
    study_topic_id = id_field(required=False, allow_null=True)
    # PostgreSQL's integer columns: stated, as SQLite's (64-bit) would have let larger numbers through the demo.
    target_count = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INT_MAX)
    canvas_width = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INT_MAX)
    canvas_height = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=INT_MAX)

    class Meta:
        model = StudySession
        fields = [*CREATE_FIELDS, "study_topic_id"]
        # The model's defaults, stated here so that the schema shows them (API.md: certification, copy).
        extra_kwargs = {"study_type": {"default": StudyType.CERTIFICATION}, "mode": {"default": SessionMode.COPY}}


class StudySessionPatchSerializer(StudySessionCreateSerializer):
    repetition_count = serializers.IntegerField(required=False, min_value=0, max_value=INT_MAX)

    class Meta(StudySessionCreateSerializer.Meta):
        fields = [*CREATE_FIELDS, "study_topic_id", *PATCH_ONLY_FIELDS]
        # The column is blank=True (forms), but "" is no review state: null is "none" (the check constraint). No
        # defaults: a PATCH changes only what it sends.
        extra_kwargs = {"review_state": {"allow_blank": False}}

    def validate_next_review_at(self, value):
        # Earlier dates are no review date; in many zones they also render with a seconds offset
        # (local mean time), which is not RFC 3339 (the schema's date-time).
        if value is not None and value < EARLIEST_TIME:
            raise serializers.ValidationError("Must not be before 1972-01-01.")
        return value


class AssetInputSerializer(serializers.Serializer):
    document_id = id_field()
    asset_type = serializers.ChoiceField(choices=AssetType.choices)
    role = serializers.ChoiceField(choices=AssetRole.choices, required=False, allow_null=True)
    sort_order = serializers.IntegerField(required=False, min_value=INT_MIN, max_value=INT_MAX)


class SnapshotInputSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, max_length=100000)  # read by multipart_upload
    sort_order = serializers.IntegerField(required=False, min_value=INT_MIN, max_value=INT_MAX)


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that is a datetime also in UTC (SQLite's adapter converts to naive UTC)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is not None:
            try:
                parsed.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        return parsed


class BoundedIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class SessionOrder:
    CREATED_AT = "created_at"
    NEXT_REVIEW_AT = "next_review_at"
    LAST_QUIZ_AT = "last_quiz_at"
    CHOICES = [(CREATED_AT, "newest first"), (NEXT_REVIEW_AT, "soonest first, nulls last"),
               (LAST_QUIZ_AT, "newest first, nulls last")]  # fmt: skip
    ORDERINGS = {
        CREATED_AT: [F("created_at").desc(), F("id").desc()],
        NEXT_REVIEW_AT: [F("next_review_at").asc(nulls_last=True), F("id").asc()],
        LAST_QUIZ_AT: [F("last_quiz_at").desc(nulls_last=True), F("id").desc()],
    }


class StudySessionFilter(FilterSet):
    study_type = filters.ChoiceFilter(choices=StudyType.choices)
    # Stored NFC: an NFD spelling filters by the same text.
    certification = NFCCharFilter(max_length=200)
    language_code = NFCCharFilter(max_length=20)
    learning_level = NFCCharFilter(max_length=50)
    subject = NFCCharFilter(max_length=200)
    topic = NFCCharFilter(max_length=200)
    review_state = filters.ChoiceFilter(choices=ReviewState.choices)
    mode = filters.ChoiceFilter(choices=SessionMode.choices)
    study_topic_id = IdFilter(field_name="study_topic_id")
    document_id = IdFilter(method="filter_document", help_text="Sessions that have this document as an asset.")
    asset_type = filters.ChoiceFilter(choices=AssetType.choices, method="filter_asset_type")
    due_before = BoundedIsoDateTimeFilter(field_name="next_review_at", lookup_expr="lte")
    order = filters.ChoiceFilter(choices=SessionOrder.CHOICES, method="filter_order")

    class Meta:
        model = StudySession
        fields: list[str] = []

    # Assets of soft-deleted documents are hidden from bodies and /groups, so they match no filter either.
    def filter_document(self, queryset, name, value):
        return queryset.filter(Exists(live_assets().filter(session=OuterRef("pk"), document_id=value)))

    def filter_asset_type(self, queryset, name, value):
        return queryset.filter(Exists(live_assets().filter(session=OuterRef("pk"), asset_type=value)))

    def filter_order(self, queryset, name, value):
        return queryset.order_by(*SessionOrder.ORDERINGS[value])


_GROUP_COUNTS = {
    "session_count": serializers.IntegerField(),
    "weak_count": serializers.IntegerField(),
    "due_count": serializers.IntegerField(),
}
_CERT_TOPIC = inline_serializer("CertificationTopicGroup", {"topic": serializers.CharField(), **_GROUP_COUNTS})
_CERT_SUBJECT = inline_serializer(
    "CertificationSubjectGroup",
    {"subject": serializers.CharField(), **_GROUP_COUNTS, "topics": _CERT_TOPIC.__class__(many=True)},
)
_CERT_GROUP = inline_serializer(
    "CertificationGroup",
    {"certification": serializers.CharField(), **_GROUP_COUNTS, "subjects": _CERT_SUBJECT.__class__(many=True)},
)
_LANG_TOPIC = inline_serializer(
    "LanguageTopicGroup",
    {"topic": serializers.CharField(), **_GROUP_COUNTS, "has_audio": serializers.BooleanField(),
     "has_video": serializers.BooleanField()},  # fmt: skip
)
_LANG_SUBJECT = inline_serializer(
    "LanguageSubjectGroup", {"subject": serializers.CharField(), "topics": _LANG_TOPIC.__class__(many=True)}
)
_LANG_GROUP = inline_serializer(
    "LanguageGroup",
    {"language_code": serializers.CharField(), "learning_level": serializers.CharField(),
     "subjects": _LANG_SUBJECT.__class__(many=True)},  # fmt: skip
)
SessionGroupsSerializer = inline_serializer(
    "SessionGroups",
    {
        "by_type": inline_serializer(
            "SessionGroupsByType",
            {
                "certification": inline_serializer("CertificationGroups", {"groups": _CERT_GROUP.__class__(many=True)}),
                "language": inline_serializer("LanguageGroups", {"groups": _LANG_GROUP.__class__(many=True)}),
            },
        )
    },
)


@extend_schema_view(
    list=extend_schema(summary="List your sessions", responses={200: StudySessionSerializer, **error_responses(400)}),
    create=extend_schema(
        request=StudySessionCreateSerializer,
        responses={201: StudySessionSerializer, **error_responses(400, 404)},
    ),
    retrieve=extend_schema(responses={200: StudySessionSerializer, **error_responses(404)}),
    partial_update=extend_schema(
        request=StudySessionPatchSerializer,
        responses={200: StudySessionSerializer, **error_responses(400, 404)},
        summary="Change only the fields sent (`study_topic_id: null` detaches)",
    ),
    destroy=extend_schema(responses={204: None, **error_responses(404)}, summary="Delete (documents stay)"),
)
class StudySessionViewSet(
    OwnedObjectMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = StudySessionSerializer
    filterset_class = StudySessionFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return StudySession.objects.none()
        return sessions_with_assets(user=self.request.user)

    def list(self, request: Request) -> Response:
        # The page's body built by PostgreSQL, else from plain rows (no model instances or serializers). (A comment:
        # a docstring here would be the operation's description in the API docs.)
        if json_body_wanted(request):
            paginator = self.paginator
            limit, offset = paginator.get_limit(request), paginator.get_offset(request)
            count, results = sessions_page_json(
                queryset=self.filter_queryset(self.get_queryset()), fields=LIST_FIELDS, offset=offset, limit=limit
            )
            return JsonTextResponse(paginator.paginated_json(request, count=count, results=results))
        queryset = self.filter_queryset(self.get_queryset()).prefetch_related(None).values(*_COLUMNS)
        page = self.paginate_queryset(queryset)
        rows = session_assets_attach(list(page if page is not None else queryset))
        bodies = [session_body(row) for row in rows]
        return self.get_paginated_response(bodies) if page is not None else Response(bodies)

    def _reloaded(self, session: StudySession) -> StudySession:
        # Called inside the write's transaction: its row lock (or its new row, not yet visible) keeps a
        # concurrent delete waiting until the body is read; after the commit the row might be gone.
        return self.get_queryset().get(pk=session.pk)

    def create(self, request: Request) -> Response:
        data = StudySessionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            session = session_services.session_create(user=request.user, data=data.validated_data)
            body = StudySessionSerializer(self._reloaded(session)).data
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        data = StudySessionPatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            session_services.session_update(session=session, data=data.validated_data)
            body = StudySessionSerializer(self._reloaded(session)).data
        return Response(body)

    def perform_destroy(self, instance: StudySession) -> None:
        session_services.session_delete(session=instance)

    @extend_schema(summary="The session tree by type, certification/language, subject and topic",
                   responses={200: SessionGroupsSerializer}, filters=False)  # fmt: skip
    @action(detail=False, methods=["get"], url_path="groups", filterset_class=None, pagination_class=None)
    def groups(self, request: Request) -> Response:
        return Response(session_groups(user=request.user))

    @extend_schema(
        summary="Link a document as an asset",
        request=AssetInputSerializer,
        responses={201: SessionAssetSerializer, **error_responses(400, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="assets")
    def add_asset(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        data = AssetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asset = session_services.session_asset_add(session=session, **data.validated_data)
        return Response(SessionAssetSerializer(asset).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Unlink an asset (the document is kept)",
        parameters=[path_id_parameter("asset_id")],
        request=None,
        responses={204: OpenApiResponse(description="Unlinked."), **error_responses(404)},
    )
    @action(detail=True, methods=["delete"], url_path=r"assets/(?P<asset_id>[^/]+)")
    def remove_asset(self, request: Request, pk: str | None = None, asset_id: str | None = None) -> Response:
        session = self.get_object()
        session_services.session_asset_remove(session=session, asset_id=path_id(asset_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Upload a PNG snapshot (linked as handwriting_png / answer)",
        request={"multipart/form-data": SnapshotInputSerializer},
        responses={201: SessionAssetSerializer, **error_responses(400, 404, 413, 503)},
        parameters=[retry_after_header(503)],
        description="503 `unavailable` (with `Retry-After`) when the file store fails to write the file; nothing "
        "is kept.",
    )
    @action(detail=True, methods=["post"], url_path="snapshot", parser_classes=[MultiPartParser, FormParser])
    def snapshot(self, request: Request, pk: str | None = None) -> Response:
        session = self.get_object()
        fields, upload = multipart_upload(request, SnapshotInputSerializer, what="A PNG file")
        asset = session_services.session_snapshot_create(
            session=session, upload=upload, sort_order=fields.get("sort_order", 0)
        )
        return Response(SessionAssetSerializer(asset).data, status=status.HTTP_201_CREATED)
