"""Quiz sessions and the attempts answered in them."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .base import TimestampedModel, enum_check


class QuizStatus(models.TextChoices):
    IN_PROGRESS = "in_progress"
    DONE = "done"
    ABANDONED = "abandoned"


class QuizMode(models.TextChoices):
    RANDOM = "random"
    REVIEW_DUE = "review_due"


class QuizSource(models.TextChoices):
    APP = "app"
    VIEWER = "viewer"


class Outcome(models.TextChoices):
    CORRECT = "correct"
    WRONG = "wrong"
    UNSURE = "unsure"
    SKIPPED = "skipped"


class QuizSession(TimestampedModel):
    user = models.ForeignKey(  # no index of its own: it leads study_quiz_user_topic_idx
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_sessions", db_index=False
    )
    study_topic = models.ForeignKey("study.StudyTopic", on_delete=models.CASCADE, related_name="quiz_sessions")
    status = models.CharField(max_length=12, choices=QuizStatus.choices, default=QuizStatus.IN_PROGRESS)
    quiz_mode = models.CharField(max_length=12, choices=QuizMode.choices, default=QuizMode.RANDOM)
    wrong_only = models.BooleanField(default=False)
    target_per_subject = models.PositiveIntegerField(default=20)
    subject_filter = models.CharField(max_length=200, blank=True, default="")
    question_ids = models.JSONField(default=list)
    subject_distribution = models.JSONField(default=dict)
    source = models.CharField(max_length=10, choices=QuizSource.choices, default=QuizSource.APP)
    client_session_uuid = models.CharField(max_length=64, null=True, blank=True)
    correct_count = models.PositiveIntegerField(default=0)
    wrong_count = models.PositiveIntegerField(default=0)
    unsure_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    summary = models.JSONField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "study_topic"],
                condition=models.Q(status="in_progress"),
                name="study_quizsession_one_in_progress_uniq",
            ),
            models.UniqueConstraint(
                fields=["client_session_uuid", "study_topic"],
                condition=models.Q(client_session_uuid__isnull=False),
                name="study_quizsession_client_uuid_uniq",
            ),
            enum_check("status", QuizStatus, "study_quizsession_status_chk"),
            enum_check("quiz_mode", QuizMode, "study_quizsession_quiz_mode_chk"),
            enum_check("source", QuizSource, "study_quizsession_source_chk"),
            # The lifecycle, as the quiz flow and ingest write it: a session ends (done or abandoned) with a time;
            # only a finalized one is done and carries counts and a summary. (A viewer's session is created done
            # and finalized in the same transaction, so "done" alone does not imply "finalized".)
            models.CheckConstraint(
                condition=models.Q(status=QuizStatus.IN_PROGRESS, finished_at__isnull=True)
                | (~models.Q(status=QuizStatus.IN_PROGRESS) & models.Q(finished_at__isnull=False)),
                name="study_quizsession_finished_at_chk",
            ),
            models.CheckConstraint(
                condition=models.Q(finalized_at__isnull=True, summary__isnull=True)
                | models.Q(status=QuizStatus.DONE, finalized_at__isnull=False, summary__isnull=False),
                name="study_quizsession_finalized_chk",
            ),
            models.CheckConstraint(
                condition=models.Q(finalized_at__isnull=False)
                | models.Q(correct_count=0, wrong_count=0, unsure_count=0, skipped_count=0),
                name="study_quizsession_counts_chk",
            ),
            # The viewer's write-back names its session by the client's uuid; the app's quizzes have none.
            models.CheckConstraint(
                condition=models.Q(source=QuizSource.APP, client_session_uuid__isnull=True)
                | (models.Q(source=QuizSource.VIEWER, client_session_uuid__isnull=False)
                   & ~models.Q(client_session_uuid="")),
                name="study_quizsession_client_uuid_chk",
            ),
            models.CheckConstraint(condition=models.Q(target_per_subject__gte=1),
                                   name="study_quizsession_target_chk"),
            # The target of the (quiz_session_id, user_id) foreign keys of its attempts and analysis
            # (PostgreSQL, migration study/0009).
            models.UniqueConstraint(fields=["id", "user"], name="study_quizsession_id_user_uniq"),
        ]
        indexes = [models.Index(fields=["user", "study_topic", "-created_at"], name="study_quiz_user_topic_idx")]

    def __str__(self) -> str:
        return f"quiz #{self.pk} ({self.status})"


class QuestionAttempt(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    quiz_session = models.ForeignKey(  # no index of its own: it leads study_attempt_session_idx
        QuizSession, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    question = models.ForeignKey(  # no index of its own: it leads study_attempt_question_idx
        "study.Question", on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    selected_choice = models.PositiveSmallIntegerField(null=True, blank=True)
    is_unsure = models.BooleanField(default=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    answered_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            enum_check("outcome", Outcome, "study_questionattempt_outcome_chk"),
            models.CheckConstraint(
                condition=models.Q(selected_choice__isnull=True) | models.Q(selected_choice__gte=1),
                name="study_questionattempt_selected_choice_chk",
            ),
            # The target of question progress's (last_attempt_id, user_id) foreign key (PostgreSQL, study/0009).
            models.UniqueConstraint(fields=["id", "user"], name="study_questionattempt_id_user_uniq"),
        ]
        indexes = [
            models.Index(fields=["question", "answered_at"], name="study_attempt_question_idx"),
            models.Index(fields=["quiz_session", "question"], name="study_attempt_session_idx"),
        ]

    def __str__(self) -> str:
        return f"attempt #{self.pk} q{self.question_id} {self.outcome}"

    @classmethod
    def later_in_its_session(cls) -> models.QuerySet:
        """For a subquery (`Exists`): the attempts of the outer attempt's question in its session answered after it
        (at one instant, stored after it). An attempt with one was superseded there: a session's last answer to a
        question is the one that counts (finalize, the analyses)."""
        return cls.objects.filter(
            quiz_session_id=models.OuterRef("quiz_session_id"), question_id=models.OuterRef("question_id")
        ).filter(
            models.Q(answered_at__gt=models.OuterRef("answered_at"))
            | models.Q(answered_at=models.OuterRef("answered_at"), id__gt=models.OuterRef("id"))
        )
