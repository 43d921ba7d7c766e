"""Admin for memo cards, their evidence and progress (the review queue comes with the cards issue)."""

from django.contrib import admin

from study.models import CardEvidence, CardProgress, MemoCard


class CardEvidenceInline(admin.TabularInline):
    model = CardEvidence
    extra = 0


@admin.register(MemoCard)
class MemoCardAdmin(admin.ModelAdmin):
    list_display = ("id", "cue", "fact", "format", "source_kind", "needs_review", "flagged_by", "user")
    list_filter = ("needs_review", "format", "source_kind", "user")
    search_fields = ("cue", "fact")
    raw_id_fields = ("user", "source_question", "study_topic")
    inlines = [CardEvidenceInline]
    ordering = ("-id",)


@admin.register(CardProgress)
class CardProgressAdmin(admin.ModelAdmin):
    list_display = ("card", "user", "last_outcome", "review_stage", "due_at", "last_reviewed_at")
    list_filter = ("last_outcome", "review_stage", "user")
    raw_id_fields = ("user", "card")
