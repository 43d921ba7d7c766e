"""API views for memo cards (/api/study-cards): review groups, edits, SR rating, the cram deck."""

from types import SimpleNamespace

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from study.models import MemoCard, Question
from study.selectors import cards as card_selectors
from study.services import cards as card_services
from study.services.topics import topic_get_live
from studyserver.errors import NotFound
from studyserver.sqljson import JsonTextResponse, json_body_wanted

from .card_serializers import (
    ApproveBatchResultSerializer,
    ApproveBatchSerializer,
    CardCreateSerializer,
    CardGroupSerializer,
    CardPatchSerializer,
    CardSerializer,
    CountSerializer,
    DeckQuery,
    DueQuery,
    GroupsQuery,
    RateResultSerializer,
    RateSerializer,
    card_body,
    card_group_body,
)
from .common import ErrorSerializer, path_id, path_id_parameter

_ID = path_id_parameter("id", "card id")
_ERR = OpenApiResponse(ErrorSerializer, description="Invalid input: `invalid` (with `errors`), or the rule refused.")
_NOT_FOUND = OpenApiResponse(ErrorSerializer, description="Not found (another user's or a deleted card): `not_found`.")
_DUPLICATE = OpenApiResponse(ErrorSerializer, description="`duplicate_card`: a live card with the same fact exists.")


class CardContentNegotiation(DefaultContentNegotiation):
    """Here `?format=` filters cards (qa|cloze); it is not DRF's renderer override."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


def _limit_params(default: int, maximum: int) -> OpenApiParameter:
    # (0 or less is a 400; more than the maximum reads as the maximum)
    return OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description=f"default {default}, max {maximum}")


@extend_schema_view(
    list=extend_schema(
        summary="Cards grouped by source question (manual cards by material); not paginated",
        parameters=[
            OpenApiParameter("needs_review", bool),
            OpenApiParameter("format", str, enum=["qa", "cloze"]),
            _limit_params(600, 2000),
        ],
        responses={200: CardGroupSerializer(many=True), 400: _ERR},
    ),
    create=extend_schema(
        summary="Create a manual card (approved)",
        request=CardCreateSerializer,
        responses={201: CardSerializer, 400: _ERR, 404: _NOT_FOUND, 409: _DUPLICATE},
    ),
    partial_update=extend_schema(
        summary="Edit (approves, whatever needs_review says), approve (needs_review=false) or flag back (true)",
        parameters=[_ID],
        request=CardPatchSerializer,
        responses={200: CardSerializer, 400: _ERR, 404: _NOT_FOUND, 409: _DUPLICATE},
    ),
    retrieve=extend_schema(summary="One card", parameters=[_ID], responses={200: CardSerializer, 404: _NOT_FOUND}),
    destroy=extend_schema(summary="Soft delete", parameters=[_ID], responses={204: None, 404: _NOT_FOUND}),
)
class CardViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = CardSerializer
    pagination_class = None
    content_negotiation_class = CardContentNegotiation
    lookup_value_regex = r"[0-9]{1,18}"  # ASCII digits only (\d matches "１" too)
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MemoCard.objects.none()
        return MemoCard.objects.live().filter(user=self.request.user).prefetch_related("evidence")

    def list(self, request: Request) -> Response:
        query = GroupsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = {
            "needs_review": query.validated_data["needs_review"],
            "card_format": query.validated_data.get("format"),
            "limit": query.validated_data["limit"],
        }
        if json_body_wanted(request):
            return JsonTextResponse(card_selectors.card_groups_json(user=request.user, **filters))
        groups = card_selectors.card_groups_list(user=request.user, **filters)
        return Response([card_group_body(group) for group in groups])

    def create(self, request: Request) -> Response:
        body = CardCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with transaction.atomic():  # the body (its evidence) is read before the commit: a failure keeps nothing
            topic = None
            if data.get("study_topic_id"):  # live until the commit: a card is never filed under a deleted topic
                topic = topic_get_live(user=request.user, topic_id=data["study_topic_id"], lock=True)
            card = card_services.card_create(
                user=request.user,
                card_format=data["format"],
                cue=data["cue"],
                fact=data["fact"],
                cloze_text=data["cloze_text"],
                material=data["material"].strip(),
                study_topic=topic,
            )
            body = CardSerializer(card).data
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        card = self.get_object()
        body = CardPatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        # Only text that differs from the card's is an edit. Apps often send the whole card back: one that flags a
        # card sends its text unchanged with needs_review true, and echoing a waiting card's text approves nothing.
        content = {k: data[k] for k in ("cue", "fact", "cloze_text") if k in data and data[k] != getattr(card, k)}
        with transaction.atomic():
            # A content edit is the user's final version and approves (SPEC), whatever needs_review the body
            # also carries (the one the app loaded).
            if content:
                card_services.card_update(card=card, **content)
            elif "needs_review" in data:
                review = card_services.card_flag if data["needs_review"] else card_services.card_approve
                if not review(card=card):
                    # Already so (an app's retry, or a concurrent review won): the card as it is now; deleted
                    # meanwhile by a concurrent request → 404.
                    card = self.get_object()
        return Response(CardSerializer(card).data)

    def perform_destroy(self, instance: MemoCard) -> None:
        if not card_services.card_delete(card=instance):  # deleted meanwhile by a concurrent request
            raise NotFound()

    @extend_schema(summary="How many cards wait for review", responses={200: CountSerializer})
    @action(detail=False, methods=["get"], url_path="needs-review/count")
    def needs_review_count(self, request: Request) -> Response:
        return Response({"count": card_selectors.cards_needing_review_count(user=request.user)})

    @extend_schema(
        summary="Approve every pending card of one source question",
        request=ApproveBatchSerializer,
        responses={200: ApproveBatchResultSerializer, 400: _ERR, 404: _ERR},
    )
    @action(detail=False, methods=["post"], url_path="approve-batch")
    def approve_batch(self, request: Request) -> Response:
        """404 for a question that is not the user's. A question deleted since keeps its cards in the review queue
        (grouped under it), so they can still be approved together."""
        body = ApproveBatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        question_id = body.validated_data["source_question_id"]
        approved = card_services.cards_approve_for_question(user=request.user, source_question_id=question_id)
        if not approved and not Question.objects.filter(pk=question_id, user=request.user).exists():
            raise NotFound("Question not found.")
        return Response({"approved": len(approved)})

    @extend_schema(
        summary="Cards to recall now: scheduled due first, then new ones",
        parameters=[_limit_params(30, 200)],
        responses={200: CardSerializer(many=True), 400: _ERR},
    )
    @action(detail=False, methods=["get"])
    def due(self, request: Request) -> Response:
        query = DueQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data["limit"]
        if json_body_wanted(request):
            return JsonTextResponse(card_selectors.cards_due_json(user=request.user, limit=limit))
        return Response([card_body(row) for row in card_selectors.cards_due_list(user=request.user, limit=limit)])

    @extend_schema(
        summary="Rate a recall (암|애매|모름 or correct|unsure|wrong)",
        description="A scheduled card climbs the ladder; a correct recall of a card with no due date (known or "
        "mastered) keeps it out of the queue; a miss puts it due tomorrow at stage 0. "
        "Every rating counts. An app that may send a rating twice (a retry of an answer it lost) sends "
        "an `Idempotency-Key`: a rating with the key of the card's last rating is that rating resent; it changes "
        "nothing and is answered as it left the card (409 `conflict` with another outcome). Only the last "
        "rating's key is kept: a retry sent after another rating of the card (another device) counts again.",
        parameters=[_ID, OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
            description="A unique id of this rating, 1 to 64 visible ASCII characters (a UUID, say).",
        )],
        request=RateSerializer,
        responses={
            200: RateResultSerializer,
            400: OpenApiResponse(ErrorSerializer, description="`invalid` outcome or key, or `not_reviewed` card"),
            404: _NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="`conflict`: the key was sent with another outcome."),
        },
    )
    @action(detail=True, methods=["post"])
    def rate(self, request: Request, pk: str | None = None) -> Response:
        card_id = path_id(pk)
        body = RateSerializer(data=request.data)
        if not body.is_valid():
            self.get_object()  # a missing card is a 404 before a bad body is a 400
            body.is_valid(raise_exception=True)
        key = request.headers.get("Idempotency-Key", "").strip()
        if key and not (len(key) <= 64 and key.isascii() and key.isprintable() and " " not in key):
            self.get_object()  # as for the body: a missing card is a 404 first
            raise ValidationError({"Idempotency-Key": ["At most 64 visible ASCII characters."]})
        # The service loads the card once, under its lock (no get_object() here).
        progress = card_services.card_rate_for_user(
            user_id=request.user.pk, card_id=card_id, outcome=body.validated_data["outcome"], key=key
        )
        result = {
            "card_id": card_id,
            "outcome": progress.last_outcome,
            "review_stage": progress.review_stage,
            "due_at": progress.due_at,
        }
        return Response(RateResultSerializer(result).data)

    @extend_schema(
        summary="The cram deck: least recently viewed approved cards",
        parameters=[
            OpenApiParameter("material", str),
            OpenApiParameter("format", str, enum=["qa", "cloze"]),
            _limit_params(20, 100),
        ],
        responses={200: CardSerializer(many=True), 400: _ERR},
    )
    @action(detail=False, methods=["get"])
    def deck(self, request: Request) -> Response:
        query = DeckQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = card_selectors.cards_deck_list(
            user=request.user,
            material=query.validated_data.get("material") or None,
            card_format=query.validated_data.get("format"),
            limit=query.validated_data["limit"],
        )
        return Response([card_body(row) for row in rows])

    @extend_schema(summary="Count a cram-deck view (no SR effect)", request=None, parameters=[_ID],
                   responses={204: None, 400: OpenApiResponse(ErrorSerializer, description="`not_reviewed` card"),
                              404: _NOT_FOUND})
    @action(detail=True, methods=["post"], url_path="view")
    def mark_viewed(self, request: Request, pk: str | None = None) -> Response:
        if not card_services.card_view(card=self.get_object()):  # deleted meanwhile by a concurrent request
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)
