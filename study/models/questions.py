"""Multiple-choice questions of a topic."""

from django.conf import settings
from django.db import models
from django.db.models.lookups import Range

from .base import SoftDeleteModel, TimestampedModel


class ChoiceCount(models.Func):
    """The number of choices: the length of a JSON array, 0 for anything that is not an array."""

    output_field = models.IntegerField()
    template = "coalesce(json_array_length(%(expressions)s), 0)"  # SQLite (the demo)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])  # used twice, so are its parameters
        return f"CASE jsonb_typeof({sql}) WHEN 'array' THEN jsonb_array_length({sql}) ELSE 0 END", [*params, *params]


MIN_CHOICES, MAX_CHOICES = 2, 10


class Question(TimestampedModel, SoftDeleteModel):
    user = models.ForeignKey(  # no index of its own: it leads study_question_user_topic_idx
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="questions", db_index=False
    )
    study_topic = models.ForeignKey(  # no index of its own: it leads study_question_topic_subj_idx
        "study.StudyTopic", on_delete=models.CASCADE, related_name="questions", db_index=False
    )
    subject = models.CharField(max_length=200)
    question_text = models.TextField()
    choices = models.JSONField(help_text="List of 2..10 choice strings.")
    correct_choice = models.PositiveSmallIntegerField(help_text="1-based index into choices.")
    explanation = models.TextField(blank=True, default="")
    source = models.JSONField(default=dict, blank=True, help_text='{"exam", "year", "number"}')

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(correct_choice__gte=1), name="study_question_correct_choice_chk"),
            # A list of 2..10 choices (ChoiceCount is 0 for anything that is not a list).
            models.CheckConstraint(
                condition=Range(ChoiceCount("choices"), (MIN_CHOICES, MAX_CHOICES)),
                name="study_question_choice_count_chk",
            ),
            # The answer is one of the choices, whatever writes the row (two edits racing, the admin, a script).
            models.CheckConstraint(
                condition=models.Q(correct_choice__lte=ChoiceCount("choices")),
                name="study_question_correct_in_choices_chk",
            ),
            # A question asks something under a subject: the API, the import and the admin refuse blank texts, and a
            # card made from it takes the question's text as its cue (study_memocard_text_chk).
            models.CheckConstraint(condition=~models.Q(question_text="") & ~models.Q(subject=""),
                                   name="study_question_text_chk",
                                   violation_error_message="A question needs its text and its subject."),
            # The target of the (question_id, user_id) foreign keys of its attempts, progress, explanation and
            # cards: they are the question's owner's (PostgreSQL, migration study/0009).
            models.UniqueConstraint(fields=["id", "user"], name="study_question_id_user_uniq"),
        ]
        indexes = [
            models.Index(fields=["study_topic", "subject"], name="study_question_topic_subj_idx"),
            models.Index(fields=["user", "study_topic"], name="study_question_user_topic_idx"),
        ]

    def __str__(self) -> str:
        return self.question_text[:60]
