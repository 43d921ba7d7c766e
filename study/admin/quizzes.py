"""Admin for questions, quiz sessions, attempts, progress, explanations and analyses."""

from django.contrib import admin

from study.models import (
    Question,
    QuestionAttempt,
    QuestionExplanation,
    QuestionProgress,
    QuizSession,
    SessionAnalysis,
)


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("id", "short_text", "subject", "study_topic", "correct_choice", "user", "deleted_at")
    list_filter = ("subject", ("deleted_at", admin.EmptyFieldListFilter), "user")
    search_fields = ("question_text", "subject")
    raw_id_fields = ("user", "study_topic")
    list_select_related = ("study_topic", "user")
    ordering = ("-id",)

    @admin.display(description="question")
    def short_text(self, obj: Question) -> str:
        return obj.question_text[:80]


class QuestionAttemptInline(admin.TabularInline):
    model = QuestionAttempt
    extra = 0
    raw_id_fields = ("question", "user")
    readonly_fields = ("outcome", "answered_at")


@admin.register(QuizSession)
class QuizSessionAdmin(admin.ModelAdmin):
    list_display = ("id", "study_topic", "status", "quiz_mode", "source", "correct_count", "wrong_count",
                    "unsure_count", "user", "created_at", "finalized_at")
    list_filter = ("status", "quiz_mode", "source", "user")
    search_fields = ("client_session_uuid",)
    raw_id_fields = ("user", "study_topic")
    list_select_related = ("study_topic", "user")
    inlines = [QuestionAttemptInline]
    ordering = ("-created_at", "-id")


@admin.register(QuestionAttempt)
class QuestionAttemptAdmin(admin.ModelAdmin):
    list_display = ("id", "question", "quiz_session", "selected_choice", "is_unsure", "outcome", "answered_at")
    list_filter = ("outcome",)
    raw_id_fields = ("user", "quiz_session", "question")
    ordering = ("-answered_at", "-id")


@admin.register(QuestionProgress)
class QuestionProgressAdmin(admin.ModelAdmin):
    list_display = ("question", "user", "last_outcome", "pattern_state", "review_stage", "due_at",
                    "last_reviewed_at")
    list_filter = ("last_outcome", "pattern_state", "review_stage", "user")
    raw_id_fields = ("user", "question", "last_attempt")
    list_select_related = ("question", "user")


@admin.register(QuestionExplanation)
class QuestionExplanationAdmin(admin.ModelAdmin):
    list_display = ("question", "backend", "created_at")
    list_filter = ("backend",)
    search_fields = ("text",)
    raw_id_fields = ("user", "question")


@admin.register(SessionAnalysis)
class SessionAnalysisAdmin(admin.ModelAdmin):
    list_display = ("quiz_session", "status", "reason", "user", "created_at")
    list_filter = ("status", "reason")
    raw_id_fields = ("user", "quiz_session")
