"""Study sessions (handwriting / memorisation) and the assets linked to them."""

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from .base import TimestampedModel, enum_check


class StudyType(models.TextChoices):
    CERTIFICATION = "certification"
    LANGUAGE = "language"


class SessionMode(models.TextChoices):
    COPY = "copy"
    TRACE = "trace"
    BLANK_REPEAT = "blank-repeat"
    DICTATION = "dictation"
    SHADOWING = "shadowing"
    QUIZ = "quiz"
    FLASHCARD = "flashcard"


class ReviewState(models.TextChoices):
    NEW = "new"
    LEARNING = "learning"
    WEAK = "weak"
    MASTERED = "mastered"


class AssetType(models.TextChoices):
    SOURCE_SCAN = "source_scan"
    HANDWRITING_PNG = "handwriting_png"
    AUDIO = "audio"
    VIDEO = "video"
    TRANSCRIPT = "transcript"
    REFERENCE = "reference"


class AssetRole(models.TextChoices):
    PROMPT = "prompt"
    ANSWER = "answer"
    PRONUNCIATION = "pronunciation"
    LECTURE = "lecture"
    LISTENING_SOURCE = "listening_source"
    SHADOWING_SOURCE = "shadowing_source"
    REFERENCE = "reference"


class StudySession(TimestampedModel):
    user = models.ForeignKey(  # no index of its own: it leads study_session_user_created_idx
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_sessions", db_index=False
    )
    study_topic = models.ForeignKey(
        "study.StudyTopic", on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    study_type = models.CharField(max_length=20, choices=StudyType.choices, default=StudyType.CERTIFICATION)
    certification = models.CharField(max_length=200, blank=True, default="")
    language_code = models.CharField(max_length=20, blank=True, default="")
    learning_level = models.CharField(max_length=50, blank=True, default="")
    subject = models.CharField(max_length=200, blank=True, default="")
    topic = models.CharField(max_length=200, blank=True, default="")
    source_text = models.TextField(blank=True, default="")
    source_page = models.CharField(max_length=50, blank=True, default="")
    mode = models.CharField(max_length=20, choices=SessionMode.choices, default=SessionMode.COPY)
    prompt_question = models.TextField(blank=True, default="")
    expected_answer = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    target_count = models.PositiveIntegerField(null=True, blank=True)
    canvas_width = models.PositiveIntegerField(null=True, blank=True)
    canvas_height = models.PositiveIntegerField(null=True, blank=True)
    strokes_json = models.JSONField(default=dict, blank=True)
    repetition_count = models.PositiveIntegerField(default=0)
    schema_version = models.PositiveSmallIntegerField(default=1)
    ocr_text = models.TextField(blank=True, default="")
    user_corrected_text = models.TextField(blank=True, default="")
    ai_summary = models.TextField(blank=True, default="")
    review_state = models.CharField(max_length=10, choices=ReviewState.choices, null=True, blank=True)
    next_review_at = models.DateTimeField(null=True, blank=True)
    last_quiz_at = models.DateTimeField(null=True, blank=True)
    correct_count = models.PositiveIntegerField(default=0)
    incorrect_count = models.PositiveIntegerField(default=0)
    documents = models.ManyToManyField("study.Document", through="study.SessionAsset", related_name="sessions")

    class Meta:
        constraints = [
            enum_check("study_type", StudyType, "study_studysession_study_type_chk"),
            enum_check("mode", SessionMode, "study_studysession_mode_chk"),
            enum_check("review_state", ReviewState, "study_studysession_review_state_chk", nullable=True),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="study_session_user_created_idx"),
            models.Index(fields=["user", "next_review_at"], name="study_session_user_review_idx"),
            models.Index(fields=["user", "study_topic"], name="study_session_user_topic_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.study_type}/{self.mode} #{self.pk}"


class SessionAsset(models.Model):
    session = models.ForeignKey(  # no index of its own: it leads study_sessionasset_link_uniq
        StudySession, on_delete=models.CASCADE, related_name="assets", db_index=False
    )
    document = models.ForeignKey("study.Document", on_delete=models.CASCADE, related_name="session_assets")
    asset_type = models.CharField(max_length=20, choices=AssetType.choices)
    role = models.CharField(max_length=20, choices=AssetRole.choices, null=True, blank=True)
    sort_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sort_order", "id"]
        constraints = [
            # NULL role collides with NULL role: COALESCE makes it a value (portable to SQLite).
            models.UniqueConstraint(
                "session",
                "document",
                "asset_type",
                Coalesce("role", models.Value("")),
                name="study_sessionasset_link_uniq",
                violation_error_message="This session already links this document with this asset type and role.",
            ),
            enum_check("asset_type", AssetType, "study_sessionasset_asset_type_chk"),
            enum_check("role", AssetRole, "study_sessionasset_role_chk", nullable=True),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}:{self.asset_type}/{self.role or '-'} → {self.document_id}"
