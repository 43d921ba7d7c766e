"""Quiz session endpoints: start, current, attempts, finish, abandon, list and detail."""

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from study.models import QuizSession
from study.models.quizzes import Outcome, QuizMode, QuizStatus
from study.selectors.quizzes import quiz_session_current, quiz_session_questions, quiz_sessions_list
from study.services.quizzes import (
    quiz_attempt_record,
    quiz_session_abandon,
    quiz_session_finish,
    quiz_session_start,
)
from studyserver.errors import NotFound

from .common import FilterSet, IdFilter, NFCCharField, error_responses, id_field, path_id
from .question_serializers import QuizQuestionSerializer


class QuizStartSerializer(serializers.Serializer):
    study_topic_id = id_field()
    target_per_subject = serializers.IntegerField(min_value=1, max_value=200, default=20)
    subject_filter = NFCCharField(max_length=200, required=False, allow_blank=True, default="")  # NFC, as stored
    wrong_only = serializers.BooleanField(required=False, default=False)
    quiz_mode = serializers.ChoiceField(choices=QuizMode.choices, default=QuizMode.RANDOM)


class AttemptSerializer(serializers.Serializer):
    question_id = id_field()
    selected_choice = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True)
    is_unsure = serializers.BooleanField(required=False, default=False)
    skipped = serializers.BooleanField(required=False, default=False)


class SummarySerializer(serializers.Serializer):
    """SPEC "Finalize": this session's counters, then the whole topic's after it."""

    correct = serializers.IntegerField()
    wrong = serializers.IntegerField()
    unsure = serializers.IntegerField()
    skipped = serializers.IntegerField()
    newly_correct = serializers.IntegerField()
    relapsed = serializers.IntegerField()
    recovered = serializers.IntegerField()
    chronic_remaining = serializers.IntegerField()
    pending_review_count = serializers.IntegerField()
    chronic_count = serializers.IntegerField()
    regressed_count = serializers.IntegerField()


class AttemptResultSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    is_correct = serializers.BooleanField()
    correct_choice = serializers.IntegerField()
    cursor = serializers.IntegerField()
    status = serializers.ChoiceField(choices=QuizStatus.choices)
    summary = SummarySerializer(required=False)


class FinishResultSerializer(serializers.Serializer):
    summary = SummarySerializer()


class SubjectWeaknessSerializer(serializers.Serializer):
    subject = serializers.CharField()
    accuracy = serializers.FloatField(allow_null=True)


class SubjectStatsSerializer(serializers.Serializer):
    subject = serializers.CharField()
    correct = serializers.IntegerField()
    wrong = serializers.IntegerField()
    unsure = serializers.IntegerField()
    accuracy = serializers.FloatField(allow_null=True)
    topic_accuracy = serializers.FloatField(allow_null=True)


class AnalysisSerializer(serializers.Serializer):
    status = serializers.CharField()
    reason = serializers.CharField()
    weakest_subjects = SubjectWeaknessSerializer(many=True)
    subjects = SubjectStatsSerializer(many=True)
    chronic_question_ids = serializers.ListField(child=serializers.IntegerField())
    regressed_question_ids = serializers.ListField(child=serializers.IntegerField())


class QuizSessionSerializer(serializers.ModelSerializer):
    study_topic_id = serializers.IntegerField(read_only=True)
    cursor = serializers.IntegerField(read_only=True, default=0)
    summary = serializers.SerializerMethodField()
    analysis = serializers.SerializerMethodField()

    class Meta:
        model = QuizSession
        fields = [
            "id",
            "study_topic_id",
            "status",
            "quiz_mode",
            "wrong_only",
            "target_per_subject",
            "subject_filter",
            "source",
            "question_ids",
            "subject_distribution",
            "cursor",
            "correct_count",
            "wrong_count",
            "unsure_count",
            "skipped_count",
            "summary",
            "analysis",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(SummarySerializer(allow_null=True))
    def get_summary(self, session: QuizSession) -> dict | None:
        return session.summary if session.status == QuizStatus.DONE else None

    @extend_schema_field(AnalysisSerializer(allow_null=True))
    def get_analysis(self, session: QuizSession) -> dict | None:
        try:
            analysis = session.analysis
        except ObjectDoesNotExist:
            return None
        return AnalysisSerializer(analysis).data


class QuizSessionDetailSerializer(QuizSessionSerializer):
    """A session with its questions (never their answers)."""

    questions = serializers.SerializerMethodField()

    class Meta(QuizSessionSerializer.Meta):
        fields = [*QuizSessionSerializer.Meta.fields, "questions"]
        read_only_fields = fields

    @extend_schema_field(QuizQuestionSerializer(many=True))
    def get_questions(self, session: QuizSession) -> list[dict]:
        return QuizQuestionSerializer(quiz_session_questions(quiz_session=session), many=True).data


class QuizSessionFilter(FilterSet):
    study_topic_id = IdFilter(field_name="study_topic_id")
    status = filters.ChoiceFilter(field_name="status", choices=QuizStatus.choices)

    class Meta:
        model = QuizSession
        fields = ["study_topic_id", "status"]


class CurrentQuerySerializer(serializers.Serializer):
    study_topic_id = id_field()


@extend_schema_view(
    list=extend_schema(responses={200: QuizSessionSerializer(many=True), **error_responses(400)}),
)
class QuizSessionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The user's quiz sessions."""

    serializer_class = QuizSessionSerializer
    filterset_class = QuizSessionFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return QuizSession.objects.none()
        return quiz_sessions_list(user=self.request.user)

    def get_object(self) -> QuizSession:
        return get_object_or_404(self.get_queryset(), pk=path_id(self.kwargs["pk"]))

    def _detail(self, session: QuizSession, http_status: int = status.HTTP_200_OK) -> Response:
        return Response(QuizSessionDetailSerializer(session).data, status=http_status)

    @extend_schema(
        request=QuizStartSerializer,
        responses={201: QuizSessionDetailSerializer, **error_responses(400, 404, 409)},
        description="409 `quiz_in_progress` carries the `id` of the session in progress.",
    )
    def create(self, request: Request) -> Response:
        body = QuizStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with transaction.atomic():  # the body is read before the commit: an answer that fails keeps nothing
            session = quiz_session_start(user=request.user, **body.validated_data)
            return self._detail(self.get_queryset().get(pk=session.pk), status.HTTP_201_CREATED)

    @extend_schema(responses={200: QuizSessionDetailSerializer, **error_responses(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(self.get_object())

    @extend_schema(
        parameters=[CurrentQuerySerializer],
        responses={200: QuizSessionDetailSerializer, **error_responses(400, 404)},
    )
    @action(detail=False, methods=["get"], url_path="current", filterset_class=None)
    def current(self, request: Request) -> Response:
        query = CurrentQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        session = quiz_session_current(user=request.user, study_topic_id=query.validated_data["study_topic_id"])
        if session is None:
            raise NotFound("No quiz session in progress for this topic.")
        return self._detail(session)

    @extend_schema(
        request=AttemptSerializer,
        responses={201: AttemptResultSerializer, **error_responses(400, 404, 409)},
        description="The answer that completes the session finalizes it and returns `summary`.",
    )
    @action(detail=True, methods=["post"], url_path="attempts")
    def attempts(self, request: Request, pk: str) -> Response:
        body = AttemptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = quiz_attempt_record(user=request.user, quiz_session_id=path_id(pk), **body.validated_data)
        return Response(result, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: FinishResultSerializer, **error_responses(404, 409)})
    @action(detail=True, methods=["post"], url_path="finish")
    def finish(self, request: Request, pk: str) -> Response:
        summary = quiz_session_finish(user=request.user, quiz_session_id=path_id(pk))
        return Response({"summary": summary})

    @extend_schema(request=None, responses={200: QuizSessionDetailSerializer, **error_responses(404, 409)})
    @action(detail=True, methods=["post"], url_path="abandon")
    def abandon(self, request: Request, pk: str) -> Response:
        with transaction.atomic():  # as in create
            session = quiz_session_abandon(user=request.user, quiz_session_id=path_id(pk))
            return self._detail(self.get_queryset().get(pk=session.pk))
