"""API of study topics: CRUD with stats, the detail sections, and links to documents."""

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from study.models import Document, StudySession, StudyTopic, TopicDocument
from study.selectors.documents import document_get_live
from study.selectors.topics import topic_sections, topics_holding_document, topics_with_stats
from study.services import topics as topic_services
from studyserver.errors import NotFound

from .common import NFCCharField, OwnedObjectMixin, error_responses, id_field, path_id, path_id_parameter


class TopicWriteSerializer(serializers.Serializer):
    # NFC like document titles and file names: a decomposed (NFD) spelling is the same name (SPEC: unique).
    name = NFCCharField(max_length=200)
    study_type = serializers.CharField(max_length=50, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)


class TopicStatsSerializer(serializers.Serializer):
    session_count = serializers.IntegerField()
    document_count = serializers.IntegerField()
    question_count = serializers.IntegerField()
    card_count = serializers.IntegerField()
    cards_needing_review = serializers.IntegerField()
    questions_due = serializers.IntegerField()
    cards_due = serializers.IntegerField()


class TopicSerializer(serializers.ModelSerializer):
    stats = TopicStatsSerializer(source="*", read_only=True)

    class Meta:
        model = StudyTopic
        fields = ["id", "name", "study_type", "description", "created_at", "updated_at", "stats"]
        read_only_fields = fields


class SessionSummarySerializer(serializers.ModelSerializer):
    study_topic_id = serializers.IntegerField(allow_null=True, read_only=True)

    class Meta:
        model = StudySession
        fields = [
            "id", "study_type", "mode", "certification", "language_code", "learning_level", "subject",
            "topic", "study_topic_id", "review_state", "next_review_at", "last_quiz_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class DocumentSummarySerializer(serializers.ModelSerializer):
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Document
        fields = ["id", "title", "file_format", "file_size", "tags", "extract_status", "created_at"]
        read_only_fields = fields


class TopicSectionsSerializer(serializers.Serializer):
    sessions = SessionSummarySerializer(many=True)
    documents = DocumentSummarySerializer(many=True)


class TopicDetailSerializer(TopicSerializer):
    sections = TopicSectionsSerializer(read_only=True)

    class Meta(TopicSerializer.Meta):
        fields = [*TopicSerializer.Meta.fields, "sections"]
        read_only_fields = fields


class DocumentLinkInputSerializer(serializers.Serializer):
    document_id = id_field()


class TopicDocumentSerializer(serializers.ModelSerializer):
    topic_id = serializers.IntegerField(read_only=True)
    document_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = TopicDocument
        fields = ["id", "topic_id", "document_id", "created_at"]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="List your active topics with stats", responses={200: TopicSerializer}),
    create=extend_schema(
        request=TopicWriteSerializer,
        responses={201: TopicSerializer, **error_responses(400, 409)},
        summary="Create a topic (duplicate active name → 409 conflict)",
    ),
    retrieve=extend_schema(responses={200: TopicDetailSerializer, **error_responses(404)}),
    partial_update=extend_schema(
        request=TopicWriteSerializer, responses={200: TopicSerializer, **error_responses(400, 404, 409)}
    ),
    destroy=extend_schema(responses={204: None, **error_responses(404)}, summary="Soft-delete a topic"),
)
class StudyTopicViewSet(
    OwnedObjectMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = TopicSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return StudyTopic.objects.none()
        return topics_with_stats(user=self.request.user)

    def _reloaded(self, topic: StudyTopic) -> StudyTopic:
        # Called inside the write's transaction: its row lock (or its new row, not yet visible) keeps a
        # concurrent delete waiting until the body is read; after the commit the row might be gone.
        return self.get_queryset().get(pk=topic.pk)

    def create(self, request: Request) -> Response:
        data = TopicWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            topic = topic_services.topic_create(user=request.user, **data.validated_data)
            body = TopicSerializer(self._reloaded(topic)).data
        return Response(body, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        topic = self.get_object()
        topic.sections = topic_sections(topic=topic)
        return Response(TopicDetailSerializer(topic).data)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        topic = self.get_object()
        data = TopicWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            topic_services.topic_update(topic=topic, data=data.validated_data)
            body = TopicSerializer(self._reloaded(topic)).data
        return Response(body)

    def perform_destroy(self, instance: StudyTopic) -> None:
        if not topic_services.topic_delete(topic=instance):  # deleted meanwhile by a concurrent request
            raise NotFound()

    @extend_schema(
        summary="Topics that hold a document",
        parameters=[path_id_parameter("document_id")],
        responses={200: TopicSerializer(many=True), **error_responses(404)},
    )
    @action(detail=False, methods=["get"], url_path=r"by-document/(?P<document_id>[^/]+)", pagination_class=None)
    def by_document(self, request: Request, document_id: str) -> Response:
        document = document_get_live(user=request.user, document_id=path_id(document_id))
        if document is None:
            raise NotFound("Document not found.")
        topics = topics_holding_document(user=request.user, document_id=document.id)
        return Response(TopicSerializer(topics, many=True).data)

    @extend_schema(
        summary="Link a document to the topic",
        request=DocumentLinkInputSerializer,
        responses={201: TopicDocumentSerializer, **error_responses(400, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="documents")
    def link_document(self, request: Request, pk: str | None = None) -> Response:
        topic = self.get_object()
        data = DocumentLinkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        document = document_get_live(user=request.user, document_id=data.validated_data["document_id"])
        if document is None:
            raise NotFound("Document not found.")
        link = topic_services.topic_document_link(topic=topic, document=document)
        return Response(TopicDocumentSerializer(link).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Unlink a document from the topic (the document is kept)",
        parameters=[path_id_parameter("document_id")],
        request=None,
        responses={204: OpenApiResponse(description="Unlinked."), **error_responses(404)},
    )
    @action(detail=True, methods=["delete"], url_path=r"documents/(?P<document_id>[^/]+)")
    def unlink_document(self, request: Request, pk: str | None = None, document_id: str | None = None) -> Response:
        topic = self.get_object()
        topic_services.topic_document_unlink(topic=topic, document_id=path_id(document_id))
        return Response(status=status.HTTP_204_NO_CONTENT)
