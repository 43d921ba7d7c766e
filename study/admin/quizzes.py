"""Admin for questions, quiz sessions, attempts, progress, explanations and analyses."""

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join

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


def _pretty_json(value) -> str:
    return format_html("<pre style=\"margin:0\">{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


@admin.register(SessionAnalysis)
class SessionAnalysisAdmin(admin.ModelAdmin):
    list_display = ("quiz_session", "status", "reason", "weakest", "user", "created_at")
    list_filter = ("status", "reason")
    raw_id_fields = ("user", "quiz_session")
    list_select_related = ("quiz_session", "user")
    exclude = ("weakest_subjects", "subjects", "chronic_question_ids", "regressed_question_ids")
    readonly_fields = ("subjects_table", "weakest_subjects_json", "chronic_json", "regressed_json",
                       "created_at", "updated_at")

    @admin.display(description="weakest subjects")
    def weakest(self, obj: SessionAnalysis) -> str:
        return ", ".join(
            f"{w.get('subject')} ({w.get('accuracy')})" for w in obj.weakest_subjects or [] if isinstance(w, dict)
        )

    @admin.display(description="subjects")
    def subjects_table(self, obj: SessionAnalysis) -> str:
        rows = [r for r in obj.subjects or [] if isinstance(r, dict)]
        if not rows:
            return "-"
        columns = ("subject", "correct", "wrong", "unsure", "accuracy", "topic_accuracy")
        head = format_html_join("", "<th>{}</th>", ((c,) for c in columns))
        body = format_html_join(
            "", "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((row.get(c, ""),) for c in columns)),) for row in rows),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)

    @admin.display(description="weakest subjects (JSON)")
    def weakest_subjects_json(self, obj: SessionAnalysis) -> str:
        return _pretty_json(obj.weakest_subjects)

    @admin.display(description="chronic question ids")
    def chronic_json(self, obj: SessionAnalysis) -> str:
        return _pretty_json(obj.chronic_question_ids)

    @admin.display(description="regressed question ids")
    def regressed_json(self, obj: SessionAnalysis) -> str:
        return _pretty_json(obj.regressed_question_ids)
