"""POST /ingest/study/attempts: the viewer's write-back of offline quiz attempts."""

from collections.abc import Mapping

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from publishing.api import VIEWER_ERRORS
from publishing.viewer import ViewerChannelMixin
from study.api.common import ErrorSerializer
from studyserver.errors import ServiceUnavailable

from .services import attempts_ingest


@extend_schema_field({"type": "string", "nullable": True})
class AnsweredAtField(serializers.Field):
    """The client's answer time, as sent: `parse_answered_at` reads it, and whatever it cannot read (a number,
    an object, a NUL…) means now (SPEC) instead of refusing the learner's whole upload."""

    def to_internal_value(self, data):
        return data if isinstance(data, str) else None

    def to_representation(self, value):
        return value


class AttemptInSerializer(serializers.Serializer):
    question_pub_id = serializers.CharField(max_length=200)
    # No bounds here: a choice out of the question's range is that attempt's fault, listed in `skipped`, however far
    # out it is (the service checks it against the question's choices before anything is stored).
    selected_choice = serializers.IntegerField(required=False, allow_null=True)
    is_unsure = serializers.BooleanField(required=False, default=False)
    answered_at = AnsweredAtField(
        required=False, allow_null=True, help_text="ISO 8601; naive = UTC; unparsable = now."
    )


class IngestInSerializer(serializers.Serializer):
    client_session_uuid = serializers.CharField(min_length=1, max_length=64)
    attempts = serializers.ListField(child=AttemptInSerializer(), min_length=1)

    def to_internal_value(self, data):
        # Refuse an oversized batch before validating every element of it.
        attempts = data.get("attempts") if isinstance(data, Mapping) else None
        limit = settings.INGEST_MAX_ATTEMPTS
        if isinstance(attempts, list) and len(attempts) > limit:
            raise serializers.ValidationError({"attempts": [f"At most {limit} attempts per request."]})
        return super().to_internal_value(data)


class IngestSessionSerializer(serializers.Serializer):
    topic_pub_id = serializers.CharField(allow_null=True)
    quiz_session_id = serializers.IntegerField(required=False)
    correct = serializers.IntegerField()
    wrong = serializers.IntegerField()
    unsure = serializers.IntegerField()
    newly_correct = serializers.IntegerField(required=False)
    relapsed = serializers.IntegerField(required=False)
    recovered = serializers.IntegerField(required=False)


class IngestResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ingested", "already_ingested"])
    skipped = serializers.ListField(child=serializers.CharField(), required=False)
    sessions = IngestSessionSerializer(many=True)


class IngestAttemptsView(ViewerChannelMixin, APIView):
    """Store a viewer's offline attempts as finalized quiz sessions (source=viewer), once per uuid.

    Idempotent by `client_session_uuid`: a repeat, or a concurrent duplicate, answers
    `already_ingested` with the stored counts and changes nothing. A reused uuid whose
    attempts differ from the stored ones is answered `already_ingested` too: the uuid, not
    the content, identifies the upload, and the first stored version wins.
    """

    @extend_schema(
        operation_id="ingest_study_attempts",
        tags=["viewer"],
        auth=[],
        request=IngestInSerializer,
        responses={
            200: IngestResultSerializer,
            **VIEWER_ERRORS,
            400: OpenApiResponse(ErrorSerializer, description="Invalid body, too many attempts, mixed owners."),
            404: OpenApiResponse(ErrorSerializer, description="No attempt resolves to a live question."),
            503: OpenApiResponse(ErrorSerializer, description="Ingest disabled or VIEWER_SYNC_TOKEN unset."),
        },
    )
    def post(self, request: Request) -> Response:
        if not settings.STUDY_INGEST_ENABLED:
            raise ServiceUnavailable("Ingest is disabled (STUDY_INGEST_ENABLED).")
        body = IngestInSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = attempts_ingest(
            client_session_uuid=body.validated_data["client_session_uuid"],
            attempts=body.validated_data["attempts"],
        )
        return Response(IngestResultSerializer(result).data)
