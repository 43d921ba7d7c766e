"""Request body parsers: DRF's JSON parser, with a nesting too deep for Python's parser answered as a 400."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """A body like `[[[[…]]]]` nested some 100,000 deep makes json.loads raise RecursionError: that is bad
    input (400 `parse_error`), not a server error."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
