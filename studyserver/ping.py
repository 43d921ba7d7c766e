"""GET /api/ping: a trivial authenticated endpoint, the floor the benchmarks compare against."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

_PONG = {"status": "ok"}


class PingView(APIView):
    """Answers a constant to an authenticated user (token or session), with no database work beyond auth."""

    @extend_schema(
        operation_id="ping",
        responses={200: inline_serializer("Ping", {"status": serializers.CharField()})},
    )
    def get(self, request: Request) -> Response:
        return Response(_PONG)
