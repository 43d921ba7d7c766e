"""Admin for questions, quiz sessions, attempts, progress, explanations and analyses.

Question and explanation writes record the question's publish request (the explanation text is part of the
published question), and a question's delete is the soft delete of study.services.questions. Quiz sessions and
attempts are shown, not written.
"""

import json

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from publishing.models import PublishKind
from publishing.services import publish_request, publish_request_many
from study import scheduling
from study.api.common import NFCFormCharField
from study.api.question_serializers import QuestionFieldsSerializer
from study.models import (
    Question,
    QuestionAttempt,
    QuestionExplanation,
    QuestionProgress,
    QuizSession,
    SessionAnalysis,
)
from study.models.questions import MAX_CHOICES, MIN_CHOICES
from study.services.questions import EDITABLE_FIELDS as QUESTION_EDITABLE_FIELDS
from study.services.questions import question_delete, question_move, question_update
from study.textnorm import subject_label
from studyserver.errors import field_errors

from .base import (
    OWNER_FILTER,
    NFCSearchMixin,
    OwnerSetOnceMixin,
    SameOwnerForm,
    SoftDeleteModelAdmin,
    ViewOnlyMixin,
    refuse_future,
    save_changed_fields,
)


class QuestionProgressForm(SameOwnerForm):
    """What finalize and review complete write: the pattern window is the last ≤3 answers that were not skipped,
    and the pattern state follows from it (SPEC "Finalize" 2); the times record what happened."""

    owner_links = ("question", "last_attempt")

    def clean(self) -> dict:
        data = super().clean()
        question, attempt = data.get("question"), data.get("last_attempt")
        if question is not None and attempt is not None and attempt.question_id != question.pk:
            self.add_error("last_attempt", "This attempt answers another question.")
        window = data.get("pattern_window_attempts")
        answered = tuple(outcome for outcome in scheduling.OUTCOMES if outcome != scheduling.SKIPPED)
        if "pattern_window_attempts" in data and not (
            isinstance(window, list) and len(window) <= scheduling.PATTERN_WINDOW and all(o in answered for o in window)
        ):
            self.add_error("pattern_window_attempts", f"A JSON list of at most {scheduling.PATTERN_WINDOW} of "
                           f"{', '.join(answered)}, oldest first (skips do not enter it).")
        elif "pattern_window_attempts" in data and "pattern_state" in data:
            expected = scheduling.pattern_state(window)
            if (data["pattern_state"] or None) != expected:
                self.add_error("pattern_state", f"The window {window} makes the pattern "
                               f"{expected or 'empty'} (SPEC: it follows from the window).")
        refuse_future(self, data, "last_attempted_at", "pattern_updated_at", "last_reviewed_at")
        return data


class SessionAnalysisForm(SameOwnerForm):
    owner_links = ("quiz_session",)


class QuestionForm(SameOwnerForm):
    """The rules the API and the services enforce, as form errors instead of a 500 or a bad row."""

    owner_links = ("study_topic",)

    class Meta:
        model = Question
        fields = ("user", "study_topic", *QUESTION_EDITABLE_FIELDS)
        # NFC as the API and question_update store them, before max_length counts them
        field_classes = {"subject": NFCFormCharField, "question_text": NFCFormCharField}

    def clean_subject(self) -> str:
        return subject_label(self.cleaned_data["subject"])  # as the API stores it: one spelling a subject

    def clean_choices(self) -> list:
        choices = self.cleaned_data["choices"]
        if (
            not isinstance(choices, list)
            or not MIN_CHOICES <= len(choices) <= MAX_CHOICES
            or not all(isinstance(c, str) and c.strip() for c in choices)
        ):
            raise forms.ValidationError(f"A JSON list of {MIN_CHOICES} to {MAX_CHOICES} non-empty strings.")
        return choices

    def clean_source(self) -> dict:
        source = self.cleaned_data.get("source")
        if source in (None, ""):
            return {}
        if not isinstance(source, dict):
            raise forms.ValidationError('A JSON object such as {"exam": "가스기사", "year": 2024, "number": 3}.')
        return source

    def clean(self) -> dict:
        data = super().clean()
        choices, correct = data.get("choices"), data.get("correct_choice")
        if choices is not None and correct is not None and not 1 <= correct <= len(choices):
            self.add_error("correct_choice", f"Must be between 1 and {len(choices)} (the number of choices).")
        self._check_as_the_api_does(data)  # the topic's owner and deletion: SameOwnerForm
        return data

    def _check_as_the_api_does(self, data: dict) -> None:
        """The API's own rules for what a question holds (lengths, each choice, the source's keys and ranges), on
        the fields that passed the checks above, so that the admin stores nothing the API would refuse."""
        fields = {name: data[name] for name in QUESTION_EDITABLE_FIELDS if name in data and name not in self.errors}
        rules = QuestionFieldsSerializer(data=fields, partial=True)
        if rules.is_valid():
            return
        for name, messages in field_errors(rules.errors).items():  # "source.year", "choices.1"
            field, _, part = name.partition(".")
            text = "; ".join(f"{part}: {message}" if part else message for message in messages)
            self.add_error(field if field in self.fields else None, text)


@admin.register(Question)
class QuestionAdmin(NFCSearchMixin, OwnerSetOnceMixin, SoftDeleteModelAdmin):
    form = QuestionForm
    list_display = ("id", "short_text", "subject", "study_topic", "correct_choice", "user", "deleted_at")
    list_filter = ("subject", ("deleted_at", admin.EmptyFieldListFilter), OWNER_FILTER)
    search_fields = ("question_text", "subject")
    raw_id_fields = ("user", "study_topic")
    list_select_related = ("study_topic", "user")
    ordering = ("-id",)
    fields = ("user", "study_topic", *QUESTION_EDITABLE_FIELDS, "deleted_at", "created_at", "updated_at")
    readonly_fields = ("deleted_at", "created_at", "updated_at")

    @admin.display(description="question")
    def short_text(self, obj: Question) -> str:
        return obj.question_text[:80]

    def has_change_permission(self, request: HttpRequest, obj: Question | None = None) -> bool:
        # A deleted question is gone for the learner and the feed (a tombstone): shown, not edited.
        if obj is not None and obj.deleted_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Question, form: forms.ModelForm, change: bool) -> None:
        # (a concurrent topic delete waits, then tombstones this question too)
        if not self.topic_kept_live(request, obj, form, change):
            return
        if not change:
            # question_create takes a topic id and builds its own row; the form has built and validated this one.
            with transaction.atomic():
                obj.save()
                publish_request(kind=PublishKind.STUDY_QUESTION, source_id=obj.pk)
            return
        if not form.has_changed():
            return
        with transaction.atomic():
            if "study_topic" in form.changed_data:  # question_update does not move questions between topics
                question_move(question=obj, topic=obj.study_topic)
            data = {field: getattr(obj, field) for field in QUESTION_EDITABLE_FIELDS if field in form.changed_data}
            question_update(question=obj, data=data)

    def soft_delete(self, obj: Question) -> bool:
        return question_delete(question=obj)


class QuestionAttemptInline(ViewOnlyMixin, admin.TabularInline):
    model = QuestionAttempt
    extra = 0
    can_delete = False
    fields = ("question", "selected_choice", "is_unsure", "outcome", "answered_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[QuestionAttempt]:
        return super().get_queryset(request).select_related("question")  # each row links its question


# Quiz sessions and their attempts are written by the quiz flow only (start, answer, finalize): finalize has counted
# the attempts into the progress and spaced-repetition rows, and the API reads the snapshot (question_ids) as it
# wrote it, so an edit here could only make them disagree. They are shown only (ViewOnlyMixin).


@admin.register(QuizSession)
class QuizSessionAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "study_topic", "status", "quiz_mode", "source", "correct_count", "wrong_count",
                    "unsure_count", "user", "created_at", "finalized_at")
    list_filter = ("status", "quiz_mode", "source", OWNER_FILTER)
    search_fields = ("client_session_uuid",)
    list_select_related = ("study_topic", "user")
    inlines = [QuestionAttemptInline]
    ordering = ("-created_at", "-id")


@admin.register(QuestionAttempt)
class QuestionAttemptAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "question", "quiz_session", "selected_choice", "is_unsure", "outcome", "answered_at")
    list_filter = ("outcome",)
    # The page's questions and quiz sessions are read after it is cut (get_queryset): joined, they were read for
    # every attempt before the sort and the offset (1 s for a late page of 250,000 attempts; 0.1 s now).
    list_select_related = ()
    # Newest recorded first, along the primary key: "-answered_at" sorted every attempt for each page (an ingest
    # may record attempts answered days ago; the column still sorts by answer time on a click).
    ordering = ("-id",)
    show_full_result_count = False  # one count of the whole table a page, not two

    def get_queryset(self, request: HttpRequest) -> QuerySet[QuestionAttempt]:
        return super().get_queryset(request).prefetch_related(
            Prefetch("question", Question.objects.only("id", "question_text")),
            Prefetch("quiz_session", QuizSession.objects.only("id", "status")),  # not its question_ids snapshot
        )


@admin.register(QuestionProgress)
class QuestionProgressAdmin(admin.ModelAdmin):
    form = QuestionProgressForm
    list_display = ("question", "user", "last_outcome", "pattern_state", "review_stage", "due_at",
                    "last_reviewed_at")
    list_filter = ("last_outcome", "pattern_state", "review_stage", OWNER_FILTER)
    raw_id_fields = ("user", "question", "last_attempt")
    list_select_related = ("question", "user")

    def save_model(self, request: HttpRequest, obj: QuestionProgress, form: forms.ModelForm, change: bool) -> None:
        save_changed_fields(obj, form, change)


class QuestionExplanationForm(SameOwnerForm):
    owner_links = ("question",)  # on the add page: not a deleted one (the owner then follows the question)


@admin.register(QuestionExplanation)
class QuestionExplanationAdmin(admin.ModelAdmin):
    """The explanation text is published inside its question, so every write re-publishes that question."""

    form = QuestionExplanationForm

    list_display = ("question", "backend", "created_at")
    list_filter = ("backend",)
    search_fields = ("text",)
    raw_id_fields = ("user", "question")

    def get_readonly_fields(self, request: HttpRequest, obj: QuestionExplanation | None = None) -> tuple[str, ...]:
        # The owner follows the question; moving an explanation to another question is not an edit.
        timestamps = ("created_at", "updated_at")
        return ("user", "question", *timestamps) if obj is not None else ("user", *timestamps)

    def save_model(
        self, request: HttpRequest, obj: QuestionExplanation, form: forms.ModelForm, change: bool
    ) -> None:
        if not change:
            obj.user_id = obj.question.user_id
        with transaction.atomic():
            if save_changed_fields(obj, form, change):  # (the explainer may rewrite the text meanwhile)
                publish_request(kind=PublishKind.STUDY_QUESTION, source_id=obj.question_id)

    def delete_model(self, request: HttpRequest, obj: QuestionExplanation) -> None:
        with transaction.atomic():
            super().delete_model(request, obj)
            publish_request(kind=PublishKind.STUDY_QUESTION, source_id=obj.question_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[QuestionExplanation]) -> None:
        with transaction.atomic():
            question_ids = list(queryset.values_list("question_id", flat=True))
            super().delete_queryset(request, queryset)
            publish_request_many(kind=PublishKind.STUDY_QUESTION, source_ids=question_ids)


def _pretty_json(value) -> str:
    return format_html("<pre style=\"margin:0\">{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


@admin.register(SessionAnalysis)
class SessionAnalysisAdmin(admin.ModelAdmin):
    form = SessionAnalysisForm
    list_display = ("quiz_session", "status", "reason", "weakest", "user", "created_at")
    list_filter = ("status", "reason")
    raw_id_fields = ("user", "quiz_session")
    list_select_related = ("quiz_session", "user")
    exclude = ("weakest_subjects", "subjects", "chronic_question_ids", "regressed_question_ids")
    readonly_fields = ("subjects_table", "weakest_subjects_json", "chronic_json", "regressed_json",
                       "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: SessionAnalysis, form: forms.ModelForm, change: bool) -> None:
        save_changed_fields(obj, form, change)  # what the page changed: the analysis task writes the row too

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
