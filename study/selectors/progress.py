"""Read-side queries of question progress: the progress tabs of a topic and their counts."""

from datetime import datetime

from django.db.models import Count, F, Q, QuerySet

from study.models import QuestionProgress
from study.scheduling import BAD_OUTCOMES, CHRONIC_WRONG, REGRESSED

PROGRESS_TABS = ("pending_review", "chronic", "regressed", "due")


def _pending_review_q() -> Q:
    """Wrong/unsure last outcome, not reviewed since the last attempt."""
    return Q(last_outcome__in=sorted(BAD_OUTCOMES)) & (
        Q(last_reviewed_at__isnull=True) | Q(last_reviewed_at__lt=F("last_attempted_at"))
    )


def tab_filter(tab: str, *, now: datetime) -> Q:
    """The row condition of one progress tab (the single definition of each tab)."""
    if tab == "pending_review":
        return _pending_review_q()
    if tab == "chronic":
        return Q(pattern_state=CHRONIC_WRONG)
    if tab == "regressed":
        return Q(pattern_state=REGRESSED)
    if tab == "due":
        return Q(due_at__lte=now)
    raise ValueError(f"unknown progress tab {tab!r}")


_TAB_ORDER = {
    "pending_review": ("-last_attempted_at", "-id"),
    "chronic": ("-pattern_updated_at", "-id"),
    "regressed": ("-pattern_updated_at", "-id"),
    "due": ("due_at", "id"),
}


def topic_progress_list(*, user_id: int, topic_id: int, tab: str, now: datetime) -> QuerySet[QuestionProgress]:
    """Progress rows of a topic's live questions in one tab, with their question (one query per page)."""
    return (
        QuestionProgress.objects.filter(
            tab_filter(tab, now=now),
            user_id=user_id,
            question__study_topic_id=topic_id,
            question__deleted_at__isnull=True,
        )
        .select_related("question")
        .order_by(*_TAB_ORDER[tab])
    )


def topic_progress_counts(*, user_id: int, topic_id: int) -> dict[str, int]:
    """pending_review_count / chronic_count / regressed_count of a topic's live questions (one query)."""
    return QuestionProgress.objects.filter(
        user_id=user_id, question__study_topic_id=topic_id, question__deleted_at__isnull=True
    ).aggregate(
        pending_review_count=Count("id", filter=_pending_review_q()),
        chronic_count=Count("id", filter=Q(pattern_state=CHRONIC_WRONG)),
        regressed_count=Count("id", filter=Q(pattern_state=REGRESSED)),
    )
