"""Limit/offset pagination with the defaults of API.md (50, max 200)."""

from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 200
