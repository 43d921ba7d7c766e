"""Request body parsers: DRF's JSON, form and multipart parsers, with input they take but no database can store
(or that they would store garbled) answered as a 400 before any view runs."""

import codecs
import io
import json
import re
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
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


# --- form data: decoded strictly -------------------------------------------------------------------------------

# Django decodes form data with errors="replace" (and urlencoded bytes its charset refuses as Latin-1): a name sent
# as `%FF%FE`, or UTF-8 under `charset=ascii`, was stored as "\ufffd\ufffd" or mojibake with a 201, the text the
# client meant lost. Here it is a 400, like a JSON body that is not valid in its charset.
_STRICT_CODEC_PREFIX = "studyserver_strict_"


def _strict_codec(name: str) -> codecs.CodecInfo | None:
    """`studyserver-strict-<charset>`: <charset>, decoding strictly whatever `errors` its caller asks for.

    Django's multipart parser decodes each field's value with errors="replace" inline; handing it this codec's name
    is the one way to make those decodes fail instead of guessing, short of a copy of the parser. (It reads the part
    headers, field names and file names in them, as UTF-8 itself, and drops a part whose headers are not.)"""
    charset = name.removeprefix(_STRICT_CODEC_PREFIX)
    if charset == name or charset.startswith(_STRICT_CODEC_PREFIX):  # (a charset naming it over and over recursed)
        return None
    base = codecs.lookup(charset)

    def decode(data, errors="strict"):
        return base.decode(data, "strict")

    return codecs.CodecInfo(
        base.encode, decode, name=name, _is_text_encoding=getattr(base, "_is_text_encoding", True)
    )


codecs.register(_strict_codec)


def _not_valid_in(encoding: str) -> ParseError:
    return ParseError(f"Form data parse error - its text is not valid {encoding}.")


class FormParser(parsers.FormParser):
    """`application/x-www-form-urlencoded`, its text and %-escapes decoded strictly in the declared charset."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            pairs = parse_qsl(
                stream.read().decode(encoding),
                keep_blank_values=True,
                encoding=encoding,
                errors="strict",
                max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS,
            )
        except UnicodeDecodeError:
            raise _not_valid_in(encoding) from None
        except ValueError:  # (parse_qsl's only other ValueError: more fields than max_num_fields)
            raise TooManyFieldsSent("The number of fields exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.") from None
        data = QueryDict(mutable=True, encoding=encoding)
        for key, value in pairs:
            data.appendlist(key, value)
        data._mutable = False  # (as Django's own parsing leaves request.POST)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """`multipart/form-data`, each field's value decoded strictly in the declared charset (through the strict codec
    above). Files already written to temporary files are closed, and so removed, by Django's parser when it fails."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = dict(parser_context or {})
        encoding = parsers.get_encoding(parser_context)
        parser_context["encoding"] = _STRICT_CODEC_PREFIX + codecs.lookup(encoding).name
        try:
            parsed = super().parse(stream, media_type, parser_context)
        except UnicodeDecodeError:
            raise _not_valid_in(encoding) from None
        parsed.data.encoding = encoding
        return parsed
