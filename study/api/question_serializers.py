"""Serializers of questions and question progress (shared by the question, quiz and progress views)."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from study.models import Question, QuestionProgress
from study.models.questions import MAX_CHOICES, MIN_CHOICES

from .common import INT_MAX, NFCCharField, TextOnlyCharField, id_field


class QuestionSourceSerializer(serializers.Serializer):
    """Where a question comes from: exam, year, number (all optional). A body always carries the three, whatever
    was sent: "" for no exam, null for no year or number."""

    exam = serializers.CharField(max_length=200, required=False, allow_blank=True)
    year = serializers.IntegerField(min_value=0, max_value=9999, required=False, allow_null=True)
    number = serializers.IntegerField(min_value=0, max_value=INT_MAX, required=False, allow_null=True)

    def to_representation(self, instance) -> dict:
        data = super().to_representation(instance)
        return {"exam": data.get("exam", ""), "year": data.get("year"), "number": data.get("number")}


class QuestionFieldsSerializer(serializers.Serializer):
    """The editable fields of a question, validated for create, edit and each import row."""

    subject = NFCCharField(max_length=200)
    question_text = NFCCharField(max_length=20000)
    choices = serializers.ListField(  # API.md: [str]; a number is refused, not turned into text
        child=TextOnlyCharField(max_length=2000), min_length=MIN_CHOICES, max_length=MAX_CHOICES
    )
    correct_choice = serializers.IntegerField(min_value=1, max_value=MAX_CHOICES)
    explanation = serializers.CharField(max_length=20000, required=False, allow_blank=True, default="")
    source = QuestionSourceSerializer(required=False)

    def validate(self, attrs: dict) -> dict:
        choices = attrs.get("choices", getattr(self.instance, "choices", None))
        correct = attrs.get("correct_choice", getattr(self.instance, "correct_choice", None))
        if choices is not None and correct is not None and correct > len(choices):
            raise serializers.ValidationError({"correct_choice": [f"Must be between 1 and {len(choices)}."]})
        return attrs


class QuestionCreateSerializer(QuestionFieldsSerializer):
    study_topic_id = id_field()


class QuestionImportSerializer(serializers.Serializer):
    """JSON import body; rows are validated one by one so bad rows do not stop good ones."""

    study_topic_id = id_field()
    questions = serializers.ListField(
        child=serializers.JSONField(allow_null=True), max_length=5000, allow_empty=True
    )


class QuestionImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class QuestionImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    errors = QuestionImportErrorSerializer(many=True)


class QuestionSerializer(serializers.ModelSerializer):
    """A question as its owner sees it (with the answer)."""

    study_topic_id = serializers.IntegerField(read_only=True)
    choices = serializers.ListField(child=serializers.CharField(), read_only=True)  # (typed in the schema)
    source = QuestionSourceSerializer(read_only=True)

    class Meta:
        model = Question
        fields = [
            "id",
            "study_topic_id",
            "subject",
            "question_text",
            "choices",
            "correct_choice",
            "explanation",
            "source",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class QuizQuestionSerializer(serializers.ModelSerializer):
    """A question inside a quiz: never the answer nor the explanation."""

    study_topic_id = serializers.IntegerField(read_only=True)
    choices = serializers.ListField(child=serializers.CharField(), read_only=True)
    source = QuestionSourceSerializer(read_only=True)

    class Meta:
        model = Question
        fields = ["id", "study_topic_id", "subject", "question_text", "choices", "source"]
        read_only_fields = fields


class ProgressSerializer(serializers.ModelSerializer):
    """The 7 progress fields of a question."""

    class Meta:
        model = QuestionProgress
        fields = [
            "last_outcome",
            "last_attempted_at",
            "pattern_state",
            "pattern_window_attempts",
            "review_stage",
            "due_at",
            "last_reviewed_at",
        ]
        read_only_fields = fields


class QuestionDetailSerializer(QuestionSerializer):
    """GET /{id}: the question plus its AI explanation and the user's progress."""

    ai_explanation = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta(QuestionSerializer.Meta):
        fields = [*QuestionSerializer.Meta.fields, "ai_explanation", "progress"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_ai_explanation(self, question: Question) -> str | None:
        explanation = getattr(question, "ai_explanation", None)
        return explanation.text if explanation is not None else None

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, question: Question) -> dict | None:
        rows = getattr(question, "my_progress", None)
        if rows is None:
            rows = list(question.progress.filter(user_id=question.user_id))
        return ProgressSerializer(rows[0]).data if rows else None


class TopicProgressRowSerializer(ProgressSerializer):
    """A progress tab row: the progress fields plus the question body."""

    question_id = serializers.IntegerField(read_only=True)
    question = QuestionSerializer(read_only=True)

    class Meta(ProgressSerializer.Meta):
        fields = ["question_id", *ProgressSerializer.Meta.fields, "question"]
        read_only_fields = fields
