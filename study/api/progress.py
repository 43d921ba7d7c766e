"""GET /api/study-topics/{id}/progress?tab=…: a topic's question progress, one tab per page."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers

from study.models import QuestionProgress, StudyTopic
from study.selectors.progress import PROGRESS_TABS, topic_progress_list
from studyserver.errors import NotFound

from .common import error_responses, path_id, path_id_parameter
from .question_serializers import TopicProgressRowSerializer


class ProgressQuerySerializer(serializers.Serializer):
    tab = serializers.ChoiceField(choices=PROGRESS_TABS)


class TopicProgressView(generics.ListAPIView):
    """Progress rows of a topic in one tab: pending_review, chronic, regressed or due."""

    serializer_class = TopicProgressRowSerializer
    filter_backends: list = []

    @extend_schema(
        parameters=[
            path_id_parameter("topic_id"),
            OpenApiParameter("tab", str, required=True, enum=list(PROGRESS_TABS)),
        ],
        responses={200: TopicProgressRowSerializer(many=True), **error_responses(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return QuestionProgress.objects.none()
        topic_id = path_id(self.kwargs["topic_id"])
        if not StudyTopic.objects.live().filter(user=self.request.user, pk=topic_id).exists():
            raise NotFound("Topic not found.")
        query = ProgressQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return topic_progress_list(
            user_id=self.request.user.id, topic_id=topic_id, tab=query.validated_data["tab"], now=timezone.now()
        )
