"""Machine-made explanations of questions and analyses of finished quiz sessions."""

from django.conf import settings
from django.db import models

from .base import TimestampedModel, enum_check


class QuestionExplanation(TimestampedModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    question = models.OneToOneField("study.Question", on_delete=models.CASCADE, related_name="ai_explanation")
    text = models.TextField()
    backend = models.CharField(max_length=30, default="extractive")
    passages = models.JSONField(default=list, blank=True, help_text='[{"document_id", "snippet", "rank"}]')

    class Meta:
        # Every explainer writes something: the extractive one names the answer, a blank HTTP answer is refused.
        constraints = [models.CheckConstraint(condition=~models.Q(text=""), name="study_questionexplanation_text_chk",
                                              violation_error_message="An explanation needs its text.")]

    def __str__(self) -> str:
        return f"explanation q{self.question_id}"


class AnalysisStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"


class SessionAnalysis(TimestampedModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    quiz_session = models.OneToOneField("study.QuizSession", on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(max_length=10, choices=AnalysisStatus.choices, default=AnalysisStatus.PENDING)
    reason = models.CharField(max_length=100, blank=True, default="")
    weakest_subjects = models.JSONField(default=list, blank=True)
    subjects = models.JSONField(default=list, blank=True)
    chronic_question_ids = models.JSONField(default=list, blank=True)
    regressed_question_ids = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name_plural = "session analyses"
        constraints = [
            enum_check("status", AnalysisStatus, "study_sessionanalysis_status_chk"),
            # A skipped analysis says why (too few wrong answers); one done or pending has no reason to give.
            models.CheckConstraint(
                condition=(models.Q(status=AnalysisStatus.SKIPPED) & ~models.Q(reason=""))
                | (~models.Q(status=AnalysisStatus.SKIPPED) & models.Q(reason="")),
                name="study_sessionanalysis_reason_chk",
                violation_error_message="A skipped analysis gives its reason; a pending or done one has none.",
            ),
        ]

    def __str__(self) -> str:
        return f"analysis quiz #{self.quiz_session_id} ({self.status})"
