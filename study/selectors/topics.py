"""Reads of study topics: lists with stats computed in SQL, and the detail sections."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from study.models import (
    CardProgress,
    Document,
    MemoCard,
    Question,
    QuestionProgress,
    StudySession,
    StudyTopic,
    TopicDocument,
)

STAT_FIELDS = (
    "session_count",
    "document_count",
    "question_count",
    "card_count",
    "cards_needing_review",
    "questions_due",
    "cards_due",
)
SECTION_SESSIONS = 20
SECTION_DOCUMENTS = 50


def _count(queryset: QuerySet, topic_field: str) -> Coalesce:
    """A correlated COUNT of `queryset` rows whose `topic_field` is the outer topic."""
    counted = (
        queryset.filter(**{topic_field: OuterRef("pk")})
        .order_by()
        .values(topic_field)
        .annotate(n=Count("*"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def topics_with_stats(*, user: AbstractBaseUser) -> QuerySet[StudyTopic]:
    """The user's live topics, newest first, each annotated with every `stats` counter (one query)."""
    now = timezone.now()
    live_cards = MemoCard.objects.live()
    return (
        StudyTopic.objects.live()
        .filter(user=user)
        .annotate(
            session_count=_count(StudySession.objects.all(), "study_topic"),
            document_count=_count(TopicDocument.objects.filter(document__deleted_at__isnull=True), "topic"),
            question_count=_count(Question.objects.live(), "study_topic"),
            card_count=_count(live_cards, "study_topic"),
            cards_needing_review=_count(live_cards.filter(needs_review=True), "study_topic"),
            questions_due=_count(
                QuestionProgress.objects.filter(question__deleted_at__isnull=True, due_at__lte=now),
                "question__study_topic",
            ),
            # What the due list holds for this topic: approved live cards never recalled, and those due.
            cards_due=_count(
                live_cards.filter(needs_review=False).filter(
                    ~Exists(CardProgress.objects.filter(card=OuterRef("pk")))
                    | Exists(CardProgress.objects.filter(card=OuterRef("pk"), due_at__lte=now, review_stage__lt=4))
                ),
                "study_topic",
            ),
        )
        .order_by("-created_at", "-id")
    )


def topic_sections(*, topic: StudyTopic) -> dict:
    """The newest sessions (≤20) and the live documents (≤50) of a topic (two queries)."""
    sessions = list(
        StudySession.objects.filter(study_topic=topic, user_id=topic.user_id).order_by("-created_at", "-id")[
            :SECTION_SESSIONS
        ]
    )
    documents = list(
        Document.objects.live()
        .filter(user_id=topic.user_id, topic_links__topic=topic)
        .order_by("-created_at", "-id")[:SECTION_DOCUMENTS]
    )
    return {"sessions": sessions, "documents": documents}


def topics_holding_document(*, user: AbstractBaseUser, document_id: int) -> QuerySet[StudyTopic]:
    """The user's live topics linked to the document."""
    return topics_with_stats(user=user).filter(document_links__document_id=document_id)
