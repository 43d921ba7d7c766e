"""User API routes (/api/...): every path answers with and without its trailing slash."""

from django.urls import include, re_path

from studyserver.routers import OptionalSlashRouter

from .auth import ObtainTokenView
from .cards import CardViewSet
from .documents import DocumentViewSet
from .progress import TopicProgressView
from .questions import QuestionViewSet
from .quizzes import QuizSessionViewSet
from .sessions import StudySessionViewSet
from .topics import StudyTopicViewSet

router = OptionalSlashRouter()
router.register("study-topics", StudyTopicViewSet, basename="study-topic")
router.register("documents", DocumentViewSet, basename="document")
router.register("study-sessions", StudySessionViewSet, basename="study-session")
router.register("study-questions", QuestionViewSet, basename="study-question")
router.register("quiz-sessions", QuizSessionViewSet, basename="quiz-session")
router.register("study-cards", CardViewSet, basename="study-card")

urlpatterns = [
    re_path(r"^auth/token/?$", ObtainTokenView.as_view(), name="auth-token"),
    re_path(r"^study-topics/(?P<topic_id>[0-9]+)/progress/?$", TopicProgressView.as_view(), name="topic-progress"),
    re_path(r"^", include(router.urls)),
]
