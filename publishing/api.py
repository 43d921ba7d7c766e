"""GET /publish/feed: the viewer's pull of the published read model, ascending seq."""

import json
from datetime import UTC

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from study.api.common import ErrorSerializer
from studyserver.errors import Conflict
from studyserver.pagination import QueryIntegerField
from studyserver.sqljson import JsonTextResponse, json_negotiated

from .feed import feed_page_json
from .models import PublishKind
from .selectors import feed_page_items, feed_top_seq
from .viewer import ViewerChannelMixin

FEED_DEFAULT_LIMIT = 500
FEED_MAX_LIMIT = 2000
MAX_SEQ = 2**63 - 1


class FeedQuerySerializer(serializers.Serializer):
    after = QueryIntegerField(min_value=0, max_value=MAX_SEQ, default=0)
    limit = QueryIntegerField(min_value=1, default=FEED_DEFAULT_LIMIT)  # above the maximum: clamped, like /api limits
    kinds = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_limit(self, value: int) -> int:
        return min(value, FEED_MAX_LIMIT)

    def validate_kinds(self, value: str) -> list[str]:
        kinds = [k.strip() for k in value.split(",") if k.strip()]
        unknown = sorted(set(kinds) - set(PublishKind.values))
        if unknown:
            raise serializers.ValidationError(f"Unknown kind(s): {', '.join(unknown)}.")
        return kinds


class FeedItemSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    pub_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=PublishKind.choices)
    deleted = serializers.BooleanField()
    updated_at = serializers.DateTimeField(default_timezone=UTC, help_text="UTC, e.g. 2026-11-22T03:04:05.120000Z.")
    payload = serializers.JSONField(allow_null=True)


class FeedPageSerializer(serializers.Serializer):
    items = FeedItemSerializer(many=True)
    next_after = serializers.IntegerField()
    has_more = serializers.BooleanField()


VIEWER_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid query (unknown kind, bad number)."),
    401: OpenApiResponse(ErrorSerializer, description="No Bearer token."),
    403: OpenApiResponse(ErrorSerializer, description="Wrong Bearer token."),
    429: OpenApiResponse(ErrorSerializer, description="Throttled (viewer scope); see Retry-After."),
    503: OpenApiResponse(ErrorSerializer, description="VIEWER_SYNC_TOKEN is not configured."),
}


class FeedCursorAhead(Conflict):
    """`after` is past every seq of the feed: the viewer followed a feed that this database never held (the server
    was restored from an older backup, its feed reset, or the viewer pointed elsewhere). An empty page would let it
    wait for seqs it believes it has, and miss every change numbered up to its `after`."""

    def __init__(self, *, after: int, top: int) -> None:
        super().__init__(
            f"The feed's last seq is {top}, before after={after}: it was restored from an older backup or reset. "
            "Pull it again from after=0.",
            last_seq=top,
        )


class FeedView(ViewerChannelMixin, APIView):
    """Changes of the read model after a seq; follow `next_after` until `has_more` is false."""

    @extend_schema(
        operation_id="publish_feed",
        tags=["viewer"],
        auth=[],
        description="Auth: `Authorization: Bearer <VIEWER_SYNC_TOKEN>`. Tombstones have `deleted: true` and "
        "`payload: null`. Payload shapes per kind are in API.md.",
        parameters=[
            OpenApiParameter("after", int, description="Return rows with seq greater than this (default 0)."),
            OpenApiParameter("limit", int, description="Page size (default 500, at most 2000)."),
            OpenApiParameter(
                "kinds", str, description=f"Comma list of kinds: {', '.join(PublishKind.values)}."
            ),
        ],
        responses={
            200: FeedPageSerializer,
            409: OpenApiResponse(
                ErrorSerializer,
                description="`after` is past the feed's last seq (`last_seq` in the body): the server was restored "
                "from an older backup or its feed reset; pull again from after=0.",
            ),
            **VIEWER_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        query = FeedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after = query.validated_data["after"]
        items, next_after, has_more = feed_page_items(**query.validated_data)
        if not items and after:
            top = feed_top_seq()  # (only an empty page asks: a page with rows is past `after` by itself)
            if top < after:
                raise FeedCursorAhead(after=after, top=top)
        body = feed_page_json(items, next_after=next_after, has_more=has_more)
        if json_negotiated(request):
            return JsonTextResponse(body)
        return Response(json.loads(body))  # the browsable API
