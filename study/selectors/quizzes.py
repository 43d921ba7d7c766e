"""Read-side queries of quiz sessions: lists with cursor and analysis, the in-progress session, questions."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, QuerySet

from study.models import Question, QuizSession
from study.models.quizzes import QuizStatus


def quiz_sessions_list(
    *, user: AbstractBaseUser, study_topic_id: int | None = None, status: str | None = None
) -> QuerySet[QuizSession]:
    """The user's quiz sessions with `cursor` (distinct questions answered) and analysis, newest first."""
    sessions = (
        QuizSession.objects.filter(user=user)
        .select_related("analysis")
        .annotate(cursor=Count("attempts__question", distinct=True))
    )
    if study_topic_id is not None:
        sessions = sessions.filter(study_topic_id=study_topic_id)
    if status:
        sessions = sessions.filter(status=status)
    return sessions.order_by("-created_at", "-id")


def quiz_session_current(*, user: AbstractBaseUser, study_topic_id: int) -> QuizSession | None:
    """The in-progress session of a live topic, or None."""
    return (
        quiz_sessions_list(user=user, study_topic_id=study_topic_id, status=QuizStatus.IN_PROGRESS)
        .filter(study_topic__deleted_at__isnull=True)
        .first()
    )


def quiz_session_questions(*, quiz_session: QuizSession) -> list[Question]:
    """The snapshotted questions of a session, in snapshot order (one query)."""
    by_id = Question.objects.filter(user_id=quiz_session.user_id).in_bulk(quiz_session.question_ids)
    return [by_id[qid] for qid in quiz_session.question_ids if qid in by_id]
