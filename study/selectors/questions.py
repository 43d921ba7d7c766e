"""Read-side queries of questions: the user's live questions, filtered, with explanation and progress."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, QuerySet

from study.models import Question, QuestionProgress


def questions_list(*, user: AbstractBaseUser) -> QuerySet[Question]:
    """The user's live questions in live topics, newest first (the API's filters: `QuestionFilter`)."""
    return (
        Question.objects.live()
        .filter(user=user, study_topic__deleted_at__isnull=True)
        .order_by("-created_at", "-id")
    )


def questions_with_detail(*, user: AbstractBaseUser) -> QuerySet[Question]:
    """Live questions with their AI explanation and the user's progress (as `my_progress`)."""
    return questions_list(user=user).select_related("ai_explanation").prefetch_related(
        Prefetch("progress", queryset=QuestionProgress.objects.filter(user=user), to_attr="my_progress")
    )
