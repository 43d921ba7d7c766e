"""Memo cards (Q&A and cloze) and the evidence they were made from."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact

from .base import PostgresOnlyIndex, SoftDeleteModel, TimestampedModel, enum_check


class CardSourceKind(models.TextChoices):
    QUESTION = "question"
    MANUAL = "manual"


class CardFormat(models.TextChoices):
    QA = "qa", "Q&A"
    CLOZE = "cloze", "Cloze"


class MemoCard(TimestampedModel, SoftDeleteModel):
    user = models.ForeignKey(  # no index of its own: it leads study_card_user_question_idx
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memo_cards", db_index=False
    )
    source_kind = models.CharField(max_length=10, choices=CardSourceKind.choices, default=CardSourceKind.MANUAL)
    format = models.CharField(max_length=10, choices=CardFormat.choices, default=CardFormat.QA)
    cue = models.TextField()
    fact = models.TextField()
    cloze_text = models.TextField(blank=True, default="")
    needs_review = models.BooleanField(default=False)
    flagged_by = models.CharField(max_length=20, blank=True, default="")
    flagged_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    source_question = models.ForeignKey(
        "study.Question", on_delete=models.SET_NULL, null=True, blank=True, related_name="cards"
    )
    study_topic = models.ForeignKey(
        "study.StudyTopic", on_delete=models.SET_NULL, null=True, blank=True, related_name="cards"
    )
    extra = models.JSONField(default=dict, blank=True, help_text='e.g. {"material": "..."}')
    view_count = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)
    dedup_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedup_hash"],
                condition=models.Q(deleted_at__isnull=True),
                name="study_memocard_dedup_uniq",
            ),
            enum_check("source_kind", CardSourceKind, "study_memocard_source_kind_chk"),
            enum_check("format", CardFormat, "study_memocard_format_chk"),
            # Who sent the card back to review: nobody, the learner or a reviewer (study.services.cards).
            models.CheckConstraint(
                condition=models.Q(flagged_by__in=["", "user", "reviewer"]), name="study_memocard_flagged_by_chk"
            ),
            # A flagged card has who and when, and waits for review: card_flag writes all three, and every approval
            # (approve, approve-batch, an edit) clears the flag with it (study.services.cards).
            models.CheckConstraint(
                condition=models.Q(flagged_by="", flagged_at__isnull=True)
                | (~models.Q(flagged_by="") & models.Q(flagged_at__isnull=False, needs_review=True)),
                name="study_memocard_flagged_chk",
                violation_error_message="A flagged card names who flagged it and when, and waits for review.",
            ),
            # An approved card was reviewed: a manual card when it is made, a candidate when it is approved or edited
            # (a flag keeps the time of the last review).
            models.CheckConstraint(
                condition=models.Q(needs_review=True) | models.Q(reviewed_at__isnull=False),
                name="study_memocard_reviewed_chk",
                violation_error_message="An approved card has its review time.",
            ),
            # The cram deck counts a view and its time together (card_view); the deck orders by that time.
            models.CheckConstraint(
                condition=models.Q(view_count=0, last_viewed_at__isnull=True)
                | models.Q(view_count__gt=0, last_viewed_at__isnull=False),
                name="study_memocard_viewed_chk",
                violation_error_message="The view count and the last view time go together.",
            ),
            # A card says something on both sides: the API and the admin refuse blank texts, and candidates take
            # the question's text and its (stripped, non-empty) answer.
            models.CheckConstraint(condition=~models.Q(cue="") & ~models.Q(fact=""), name="study_memocard_text_chk",
                                   violation_error_message="A card needs text on both sides."),
            # card_dedup_hash is a sha256 in hex: a shorter value could never collide with a real duplicate.
            models.CheckConstraint(condition=Exact(Length("dedup_hash"), 64), name="study_memocard_dedup_hash_chk"),
            # The target of card progress's (card_id, user_id) foreign key (PostgreSQL, migration study/0009).
            models.UniqueConstraint(fields=["id", "user"], name="study_memocard_id_user_uniq"),
        ]
        indexes = [
            models.Index(
                fields=["user", "needs_review", "id"],
                condition=models.Q(deleted_at__isnull=True),
                name="study_card_user_review_idx",
            ),
            models.Index(fields=["user", "source_question"], name="study_card_user_question_idx"),
            # The cram deck's order (never viewed first, then least recently viewed), approved live cards only.
            PostgresOnlyIndex(
                models.F("user"),
                models.F("last_viewed_at").asc(nulls_first=True),
                models.F("id"),
                condition=models.Q(deleted_at__isnull=True, needs_review=False),
                name="study_card_user_deck_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.cue[:60]

    @property
    def material(self) -> str:
        return str((self.extra or {}).get("material") or "")


class EvidenceSource(models.TextChoices):
    QUESTION = "question"
    DOCUMENT = "document"
    EXPLANATION = "explanation"


class CardEvidence(models.Model):
    card = models.ForeignKey(MemoCard, on_delete=models.CASCADE, related_name="evidence")
    source_type = models.CharField(max_length=20, choices=EvidenceSource.choices)
    source_id = models.BigIntegerField(null=True, blank=True)
    snippet = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "card evidence"
        ordering = ["id"]
        constraints = [enum_check("source_type", EvidenceSource, "study_cardevidence_source_type_chk")]

    def __str__(self) -> str:
        return f"{self.source_type}:{self.source_id}"
