"""Serializers of the card API: card and group bodies, request bodies and query parameters."""

from rest_framework import serializers

from study.models import CardEvidence, MemoCard
from study.models.cards import CardFormat
from study.services.cards import RATING_OUTCOMES
from study.textnorm import nfc
from studyserver.pagination import QueryIntegerField

from .common import NFCCharField, SentBooleanField, VisibleCharField

MAX_ID = 2**63 - 1
TEXT_MAX = 10_000


class CardEvidenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = CardEvidence
        fields = ["source_type", "source_id", "snippet"]


class CardSerializer(serializers.ModelSerializer):
    evidence = CardEvidenceSerializer(many=True, read_only=True)
    review_stage = serializers.SerializerMethodField()

    class Meta:
        model = MemoCard
        fields = ["id", "source_kind", "format", "cue", "fact", "cloze_text", "needs_review", "flagged_by",
                  "evidence", "review_stage"]
        read_only_fields = fields

    def get_review_stage(self, obj: MemoCard) -> int | None:
        """Only the due list carries a stage (annotated there); elsewhere null."""
        return getattr(obj, "review_stage", None)


def card_body(row: dict) -> dict:
    """CardSerializer's output for a selector row (plain dict, same keys and order; no field machinery)."""
    return {
        "id": row["id"],
        "source_kind": row["source_kind"],
        "format": row["format"],
        "cue": row["cue"],
        "fact": row["fact"],
        "cloze_text": row["cloze_text"],
        "needs_review": row["needs_review"],
        "flagged_by": row["flagged_by"],
        "evidence": row["evidence"],
        "review_stage": row.get("review_stage"),
    }


def card_group_body(group: dict) -> dict:
    """CardGroupSerializer's output for a selector group."""
    return {
        "source_question_id": group["source_question_id"],
        "question_text": group["question_text"],
        "correct_choice": group["correct_choice"],
        "cards": [card_body(row) for row in group["cards"]],
    }


class CardGroupSerializer(serializers.Serializer):
    """The schema of a group (the list view builds the same body with card_group_body)."""

    source_question_id = serializers.IntegerField(allow_null=True)
    question_text = serializers.CharField()
    correct_choice = serializers.IntegerField(allow_null=True)
    cards = CardSerializer(many=True)


class CardCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=CardFormat.choices)
    cue = VisibleCharField(max_length=TEXT_MAX)
    fact = VisibleCharField(max_length=TEXT_MAX)
    cloze_text = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True, default="")
    # Stored NFC: the review groups group manual cards by it and the deck filters on it.
    material = NFCCharField(max_length=200, required=False, allow_blank=True, default="")
    study_topic_id = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False, allow_null=True)


class CardPatchSerializer(serializers.Serializer):
    needs_review = SentBooleanField(required=False)  # (a form without it approved the card: no edit approves)
    cue = VisibleCharField(max_length=TEXT_MAX, required=False)
    fact = VisibleCharField(max_length=TEXT_MAX, required=False)
    cloze_text = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Send at least one of needs_review, cue, fact, cloze_text.")
        return attrs


class ApproveBatchSerializer(serializers.Serializer):
    source_question_id = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class ApproveBatchResultSerializer(serializers.Serializer):
    approved = serializers.IntegerField()


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class NFCChoiceField(serializers.ChoiceField):
    """A choice sent in any Unicode form: 모름 typed on macOS or iOS can arrive decomposed (NFD)."""

    def to_internal_value(self, data):
        return super().to_internal_value(nfc(data) if isinstance(data, str) else data)


class RateSerializer(serializers.Serializer):
    outcome = NFCChoiceField(choices=list(RATING_OUTCOMES))


class RateResultSerializer(serializers.Serializer):
    card_id = serializers.IntegerField()
    outcome = serializers.CharField()
    review_stage = serializers.IntegerField()
    due_at = serializers.DateTimeField(allow_null=True)


class _LimitQuery(serializers.Serializer):
    """`limit` is clamped to the endpoint's maximum; anything that is not a positive integer is a 400."""

    default_limit = 50
    max_limit = 200
    limit = QueryIntegerField(required=False, min_value=1)

    def validate_limit(self, value: int) -> int:
        return min(value, self.max_limit)

    def validate(self, attrs: dict) -> dict:
        attrs.setdefault("limit", self.default_limit)
        return attrs


class GroupsQuery(_LimitQuery):
    default_limit = 600
    max_limit = 2000
    needs_review = serializers.BooleanField(required=False, allow_null=True, default=None)
    format = serializers.ChoiceField(choices=CardFormat.choices, required=False)


class DueQuery(_LimitQuery):
    default_limit = 30
    max_limit = 200


class DeckQuery(_LimitQuery):
    default_limit = 20
    max_limit = 100
    material = NFCCharField(required=False, allow_blank=True, max_length=200)  # NFC, as stored
    format = serializers.ChoiceField(choices=CardFormat.choices, required=False)
