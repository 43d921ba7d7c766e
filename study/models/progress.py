"""Per-user learning progress of questions and cards (pattern state and the SR ladder)."""

from django.conf import settings
from django.db import models

from .base import TimestampedModel, enum_check
from .quizzes import Outcome

# What a card's rating records (study.services.cards.RATING_OUTCOMES' canonical outcomes).
CARD_RATING_OUTCOMES = [Outcome.CORRECT, Outcome.UNSURE, Outcome.WRONG]


class PatternState(models.TextChoices):
    STABLE = "stable"
    RECOVERED = "recovered"
    REGRESSED = "regressed"
    CHRONIC_WRONG = "chronic_wrong"
    WRONG = "wrong"


def _stage_check(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=models.Q(review_stage__gte=0, review_stage__lte=4), name=name,
                                  violation_error_message="The review stage is between 0 and 4.")


def _mastered_check(name: str) -> models.CheckConstraint:
    """A mastered row (stage 4) is never due again (the SR ladder's rule, scheduling.advance)."""
    return models.CheckConstraint(
        condition=models.Q(review_stage__lt=4) | models.Q(due_at__isnull=True), name=name,
        violation_error_message="A mastered row (stage 4) is never due again: leave its due date empty.",
    )


class QuestionProgress(TimestampedModel):
    user = models.ForeignKey(  # no index of its own: it leads study_questionprogress_user_question_uniq
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="question_progress", db_index=False
    )
    question = models.ForeignKey("study.Question", on_delete=models.CASCADE, related_name="progress")
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    last_attempt = models.ForeignKey(
        "study.QuestionAttempt", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pattern_state = models.CharField(max_length=15, choices=PatternState.choices, null=True, blank=True)
    pattern_window_attempts = models.JSONField(
        default=list, blank=True, help_text="Outcomes of the last ≤3 non-skipped attempts, oldest first."
    )
    pattern_updated_at = models.DateTimeField(null=True, blank=True)
    review_stage = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "question progress"
        constraints = [
            models.UniqueConstraint(fields=["user", "question"], name="study_questionprogress_user_question_uniq"),
            _stage_check("study_questionprogress_review_stage_chk"),
            _mastered_check("study_questionprogress_mastered_chk"),
            enum_check("last_outcome", Outcome, "study_questionprogress_last_outcome_chk", nullable=True),
            enum_check("pattern_state", PatternState, "study_questionprogress_pattern_chk", nullable=True),
            # Finalize writes the last outcome with its time; a row made empty first (finalize's lock, review
            # complete of a question never answered) has neither.
            models.CheckConstraint(
                condition=models.Q(last_outcome__isnull=True, last_attempted_at__isnull=True)
                | models.Q(last_outcome__isnull=False, last_attempted_at__isnull=False),
                name="study_questionprogress_attempted_chk",
                violation_error_message="The last outcome and the time of the last attempt go together: set both or "
                "neither.",
            ),
            # The pattern is written with its time, and only from an answer (finalize).
            models.CheckConstraint(
                condition=models.Q(pattern_state__isnull=True, pattern_updated_at__isnull=True)
                | models.Q(pattern_state__isnull=False, pattern_updated_at__isnull=False, last_outcome__isnull=False),
                name="study_questionprogress_pattern_updated_chk",
                violation_error_message="A pattern state comes from an answer: set it with its time and a last "
                "outcome, or leave the state and its time empty.",
            ),
            # A question enters the SR queue through review complete only (SPEC), which sets last_reviewed_at; the
            # ladder moves only rows in the queue. So a row on the ladder (due, or past stage 0) was reviewed.
            models.CheckConstraint(
                condition=models.Q(review_stage=0, due_at__isnull=True) | models.Q(last_reviewed_at__isnull=False),
                name="study_questionprogress_reviewed_chk",
                violation_error_message="A question enters the review ladder through a review: a row that is due or "
                "past stage 0 needs its last review time.",
            ),
        ]
        indexes = [models.Index(fields=["user", "due_at"], name="study_qprogress_user_due_idx")]

    def __str__(self) -> str:
        return f"progress q{self.question_id} ({self.last_outcome})"


class CardProgress(TimestampedModel):
    user = models.ForeignKey(  # no index of its own: it leads study_cardprogress_user_card_uniq
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="card_progress", db_index=False
    )
    card = models.ForeignKey("study.MemoCard", on_delete=models.CASCADE, related_name="progress")
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, null=True, blank=True)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    review_stage = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    # The Idempotency-Key the last rating was sent with ("" without one): the same key again is that rating resent.
    # A database default too, so the code of the version before, still serving while `migrate` runs, can insert.
    last_rating_key = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        verbose_name_plural = "card progress"
        constraints = [
            models.UniqueConstraint(fields=["user", "card"], name="study_cardprogress_user_card_uniq"),
            _stage_check("study_cardprogress_review_stage_chk"),
            _mastered_check("study_cardprogress_mastered_chk"),
            enum_check("last_outcome", Outcome, "study_cardprogress_last_outcome_chk", nullable=True),
            # A card's progress is made by a rating (card_rate), which writes a recall (correct, unsure or wrong:
            # a card cannot be skipped) and its time.
            models.CheckConstraint(
                condition=models.Q(last_outcome__isnull=False, last_outcome__in=CARD_RATING_OUTCOMES,
                                   last_reviewed_at__isnull=False),
                name="study_cardprogress_rated_chk",
                violation_error_message="Card progress records a rating: correct, unsure or wrong, with its review "
                "time.",
            ),
        ]
        indexes = [models.Index(fields=["user", "due_at"], name="study_cprogress_user_due_idx")]

    def __str__(self) -> str:
        return f"progress card{self.card_id} stage {self.review_stage}"
