"""Request body parsers: DRF's JSON parser, with input Python's parser takes but no database can store
answered as a 400 before any view runs."""

import codecs
import io
import json
import re

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

# `\ud800`-`\udfff` escapes: in pairs they spell one character (clients that escape non-ASCII send emoji so),
# alone they decode to a lone surrogate, which is no character at all.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

MAX_JSON_DEPTH = 64  # of a JSON value a client or the admin stores (session metadata, strokes, question sources…)
TOO_DEEP = f"Nested more than {MAX_JSON_DEPTH} levels deep."
LONE_SURROGATE = "The text is not valid Unicode: a \\u escape stands for a lone surrogate."


class JSONParser(parsers.JSONParser):
    """Two kinds of input json.loads accepts are bad input here (400 `invalid`), not server errors:

    - a body like `[[[[…]]]]` nested some 100,000 deep makes json.loads raise RecursionError (a parse error);
    - a lone surrogate escape (`"\\ud800"`) decodes to a string that cannot be encoded as UTF-8: PostgreSQL
      refuses it, SQLite (the demo) stored it and every later response that rendered it failed
      (a validation error, as studyserver.errors answers a UnicodeError).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read()
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        # The bytes spell the escape in ASCII in UTF-8 (the default): in another declared charset
        # (`; charset=utf-16`) the escape is not found there, so every string is checked.
        utf8 = codecs.lookup(parsers.get_encoding(parser_context or {})).name == "utf-8"
        if (_SURROGATE_ESCAPE.search(raw) or not utf8) and not _all_text_encodable(data):
            raise ValidationError(
                {"non_field_errors": [LONE_SURROGATE]}
            )
        return data


def _all_text_encodable(value) -> bool:
    """Are all strings (keys included) in a parsed JSON value encodable as UTF-8? Iterative: no depth limit."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def json_depth(value) -> int:
    """How deep a parsed JSON value nests (a scalar 0, `{}` and `[1]` 1), level by level: no recursion, and leaves
    (the bulk of a drawing's strokes) are only looked at, never queued."""
    depth, level = 0, [value] if type(value) in (dict, list) else []
    while level:
        depth += 1
        deeper = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                kind = type(child)
                if kind is dict or kind is list:
                    deeper.append(child)
        level = deeper
    return depth


def unstorable_json(value) -> str | None:
    """Why a parsed JSON value cannot be stored and read back on every database, or None: nested more than
    MAX_JSON_DEPTH (Django's json.dumps on saving recurses), a NUL character (jsonb refuses it), a lone surrogate
    (no encoding holds it: SQLite stored one and every response rendering it failed), NaN or infinity."""
    if json_depth(value) > MAX_JSON_DEPTH:
        return TOO_DEEP
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return "Not a JSON value (NaN and infinity are none)."
    if "\\u0000" in text:  # json.dumps escapes control characters whatever ensure_ascii says
        return "NUL characters are not allowed."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return LONE_SURROGATE
    return None
