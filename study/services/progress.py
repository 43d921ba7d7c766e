"""Question progress writes outside finalize: review complete (entering the SR queue)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from study import scheduling
from study.models import Question, QuestionProgress
from studyserver.errors import NotFound


def question_review_complete(*, user: AbstractBaseUser, question_id: int) -> QuestionProgress:
    """The learner read the explanation: stage 0, due tomorrow, last_reviewed_at now: when the progress row is
    locked, so a review that waited for a finalize of the question (its answer sent at the same moment) is not
    stored as older than that answer (it would have stayed "pending review")."""
    with transaction.atomic():
        # A question of a deleted topic is gone for the learner, as everywhere else (404).
        question = (
            Question.objects.live()
            .filter(user=user, pk=question_id, study_topic__deleted_at__isnull=True)
            .only("id")
            .first()
        )
        if question is None:
            raise NotFound("Question not found.")
        progress, _created = QuestionProgress.objects.select_for_update().get_or_create(
            user=user, question=question, defaults={"created_at": timezone.now()}
        )
        now = timezone.now()
        state = scheduling.first_due(now)
        progress.review_stage = state.stage
        progress.due_at = state.due_at
        progress.last_reviewed_at = now
        progress.save(update_fields=["review_stage", "due_at", "last_reviewed_at", "updated_at"])
    return progress
