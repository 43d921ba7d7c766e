"""Limit/offset pagination with the defaults of API.md (50, max 200)."""

import json

from rest_framework import pagination
from rest_framework.request import Request


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 200

    def paginated_json(self, request: Request, *, count: int, results: str) -> str:
        """get_paginated_response()'s body as JSON text, around `results` already rendered as a JSON array."""
        self.request, self.count = request, count
        self.limit, self.offset = self.get_limit(request), self.get_offset(request)
        next_link, previous_link = json.dumps(self.get_next_link()), json.dumps(self.get_previous_link())
        return f'{{"count":{count},"next":{next_link},"previous":{previous_link},"results":{results}}}'
