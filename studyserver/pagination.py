"""Limit/offset pagination with the defaults of API.md (50, max 200).

Unlike DRF's class, which quietly reads `limit=abc` or `offset=-5` as "no value", a `limit` or `offset` that is
not a whole number in ASCII digits (or a `limit` of 0) is a 400 `invalid`, as the card endpoints answer their
`limit`: a client with a typo learns of it instead of getting another page than it asked for. Left empty
(`limit=`), either is absent, as every optional query parameter is. A `limit` above the
maximum is clamped, as API.md's "max 200" and DRF do; an `offset` past every row is an empty page.
"""

import json

from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

# Larger offsets are all "past the end"; capped so that offset + limit stays a bigint in SQL.
_MAX_OFFSET = 10**18


def _query_int(request: Request, name: str, *, minimum: int, maximum: int, default: int) -> int:
    raw = request.query_params.get(name)
    if not raw:  # absent, or empty as a form leaves it: the default, as for every other optional query parameter
        return default
    digits = raw.lstrip("0") or "0"
    if not (digits.isascii() and digits.isdigit()) or (len(digits) < 19 and int(digits) < minimum):
        raise ValidationError({name: [f"A whole number of at least {minimum} is required."]})
    return maximum if len(digits) >= 19 else min(int(digits), maximum)  # int() refuses over 4,300 digits


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = 50
    max_limit = 200

    def get_limit(self, request: Request) -> int:
        return _query_int(
            request, self.limit_query_param, minimum=1, maximum=self.max_limit, default=self.default_limit
        )

    def get_offset(self, request: Request) -> int:
        return _query_int(request, self.offset_query_param, minimum=0, maximum=_MAX_OFFSET, default=0)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = f"Page size (default {self.default_limit}, at most {self.max_limit})."
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"]["minimum"] = 0
        return parameters

    def paginated_json(self, request: Request, *, count: int, results: str) -> str:
        """get_paginated_response()'s body as JSON text, around `results` already rendered as a JSON array."""
        self.request, self.count = request, count
        self.limit, self.offset = self.get_limit(request), self.get_offset(request)
        next_link, previous_link = json.dumps(self.get_next_link()), json.dumps(self.get_previous_link())
        return f'{{"count":{count},"next":{next_link},"previous":{previous_link},"results":{results}}}'


class QueryIntegerField(serializers.IntegerField):
    """An integer query parameter (a card list's `limit`, the feed's `after` and `limit`) spelled in ASCII digits,
    as the paginator reads `limit` and `offset`: DRF's field also took `１`, ` 5`, `+5` and `5.0`."""

    def to_internal_value(self, data):
        if isinstance(data, str) and not (data.isascii() and data.isdigit()):
            self.fail("invalid")
        return super().to_internal_value(data)

