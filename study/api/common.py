"""Shared API pieces: bounded id fields and filters, JSON-object fields, the error schema for OpenAPI."""

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.http import QueryDict
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from study.textnorm import is_blank, nfc
from studyserver.errors import InvalidInput, NotFound
from studyserver.ids import BIGINT_MAX, parse_id
from studyserver.pagination import QueryIntegerField
from studyserver.parsers import TOO_DEEP, unstorable_json

INT_MAX = 2**31 - 1
INT_MIN = -(2**31)


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet, with the form class built once per filter set class instead of per request.

    The filters here are declared statically, so the form fields they produce never change; rebuilding
    them (and a Form class) on every list request cost about as much as the rest of the request.
    Each request still gets its own form instance and its own filter copies.
    """

    def get_form_class(self) -> type[forms.Form]:
        cls = type(self)
        form_class = cls.__dict__.get("_form_class")
        if form_class is None:
            form_class = super().get_form_class()
            cls._form_class = form_class
        return form_class


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    error_code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    id = serializers.IntegerField(required=False, help_text="`quiz_in_progress`: the session in progress.")
    skipped = serializers.ListField(child=serializers.CharField(), required=False,
                                    help_text="Ingest (400, 404): the pub_ids that were not taken.")
    last_seq = serializers.IntegerField(required=False, help_text="Feed (409 `conflict`): the feed's last seq.")


_ERROR_DESCRIPTIONS = {
    400: "Invalid input (`invalid`, `invalid_input`, `empty_file`, `unsupported_type`, …).",
    404: "Not found (or another user's / deleted object).",
    409: "Conflict (`conflict`, `asset_already_linked`, …).",
    413: "Body too large (`body_too_large`).",
    416: "The `Range` starts beyond the end of the file (`range_not_satisfiable`; `Content-Range: bytes */<size>`).",
    429: "Too many requests (see Retry-After).",
    503: "The database or the file store failed (`unavailable`); retry after `Retry-After` seconds (5).",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI responses for the given error status codes (401 and 415 are declared for every operation that can
    give them by studyserver.schema)."""
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_DESCRIPTIONS[code]) for code in sorted(codes)}


class IdField(QueryIntegerField):
    """An id in a body: a JSON integer, or (multipart) ASCII digits, as ids are read everywhere else
    (studyserver.ids); DRF's own field also took `"１"`, `" 1"`, `"+1"`, `"1_0"` and `1.0`."""

    def to_internal_value(self, data):
        if isinstance(data, float):
            self.fail("invalid")
        return super().to_internal_value(data)


def id_field(**kwargs) -> serializers.IntegerField:
    """An integer id in a body: positive and within bigint (larger → 400, never a DB error)."""
    return IdField(min_value=1, max_value=BIGINT_MAX, **kwargs)


def retry_after_header(*codes: int) -> OpenApiParameter:
    """OpenAPI for the `Retry-After` header of the given error responses (seconds)."""
    return OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=list(codes),
                            description="Seconds to wait before retrying.")


def path_id_parameter(name: str, description: str = "") -> OpenApiParameter:
    """OpenAPI for an id in the path that a route captures as text (and `path_id` reads): an integer, as API.md says."""
    return OpenApiParameter(name, int, OpenApiParameter.PATH, description=description)


def path_id(value) -> int:
    """An id from the URL; anything that is not a positive bigint in ASCII digits is simply not found."""
    number = parse_id(str(value))
    if number is None:
        raise NotFound()
    return number


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON object (dict) that PostgreSQL jsonb can store and every database can give back.

    In form data (multipart, urlencoded) DRF parses the field's text itself, after the body parser's checks, so
    they are made here too: nesting (json.loads raises RecursionError some 1,000 deep, and Django's own json.dumps
    on saving fails a little shallower) and lone surrogate escapes (SQLite would store them, and every response
    rendering them failed), besides NUL characters, which jsonb refuses.
    """

    default_error_messages = {
        "not_object": "Expected a JSON object.",
        "too_deep": TOO_DEEP,
    }

    def to_internal_value(self, data):
        try:
            value = super().to_internal_value(data)
        except RecursionError:
            self.fail("too_deep")
        if not isinstance(value, dict):
            self.fail("not_object")
        if problem := unstorable_json(value):
            raise serializers.ValidationError(problem, code="invalid")
        return value


class SentBooleanField(serializers.BooleanField):
    """A boolean that form input (urlencoded, multipart) may leave out, as JSON may: absent, it was not sent. DRF's
    own reads a missing form field as an unticked checkbox, False."""

    default_empty_html = serializers.empty


class VisibleCharField(serializers.CharField):
    """Text that may not be blank (unless `allow_blank`) is not blank either when it holds only invisible characters
    (a zero-width space, a BOM, a Hangul filler): a topic or a card fact that shows as nothing."""

    def to_internal_value(self, data) -> str:
        value = super().to_internal_value(data)
        if not self.allow_blank and is_blank(value):
            self.fail("blank")
        return value


class TextOnlyCharField(VisibleCharField):
    """A string, and only a string: DRF's CharField also takes a number (`1` → "1")."""

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NFCCharField(VisibleCharField):
    """Text the services store NFC-normalised (names, subjects, question texts, titles, tags), normalised here
    already, so that `max_length` limits what is stored: NFC can lengthen a text (U+FB2C is three characters)."""

    def to_internal_value(self, data) -> str:
        return nfc(super().to_internal_value(data))


class VisibleFormCharField(forms.CharField):
    """A form's text where invisible characters only are no text (a required field is missing, as in
    VisibleCharField)."""

    def to_python(self, value):
        value = super().to_python(value)
        return self.empty_value if isinstance(value, str) and is_blank(value) else value


class NFCFormCharField(VisibleFormCharField):
    """A form's text, NFC-normalised before its checks run: `max_length` limits the text as it is stored (an NFD
    Hangul syllable is two or three characters, its NFC one)."""

    def to_python(self, value):
        value = super().to_python(value)
        return nfc(value) if isinstance(value, str) else value


class NFCCharFilter(filters.CharFilter):
    """An exact match on a text stored NFC (NFCCharField): what is looked for is normalised too, so an NFD
    spelling of the value finds the row."""

    field_class = NFCFormCharField


class IdFormField(forms.IntegerField):
    """An id in a query string, in ASCII digits (see IdField)."""

    def to_python(self, value):
        if isinstance(value, str) and value and not (value.isascii() and value.isdigit()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.Filter):
    """A filter on an integer id; non-integers (other spellings too) and out-of-range values → 400."""

    field_class = IdFormField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


class OwnedObjectMixin:
    # `get_object()` for viewsets whose `get_queryset()` is already scoped to the user: a pk that is not a positive
    # bigint, another user's object or a soft-deleted one → 404. (A comment, not a docstring: drf-spectacular takes
    # the first docstring of a view's classes as each operation's description, and showed this one in the API docs.)

    def get_object(self):
        pk = path_id(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise NotFound()
        self.check_object_permissions(self.request, obj)
        return obj


def fields_without_file(request):
    """The non-file fields of a multipart body (the `file` part is read from request.FILES).

    Form data stays a QueryDict, so DRF reads it as a form: an empty optional field (`study_topic_id=`, as form
    libraries send an unset one) is left out instead of being an invalid value.
    """
    data = request.data
    if not isinstance(data, QueryDict):
        return {key: value for key, value in data.items() if key != "file"} if hasattr(data, "items") else data
    fields = QueryDict(mutable=True)
    for key, values in data.lists():
        if key != "file":
            fields.setlist(key, values)
    return fields


def multipart_upload(
    request, fields: type[serializers.Serializer], *, what: str = "A file"
) -> tuple[dict, UploadedFile]:
    """(validated non-file fields, the uploaded `file`) of a multipart upload; 400 when either is missing/bad."""
    data = fields(data=fields_without_file(request))
    data.fields.pop("file")  # declared for the schema; the upload is read below, with its own message
    data.is_valid(raise_exception=True)
    upload = request.FILES.get("file")
    if upload is None:
        raise InvalidInput(f"{what} with a non-empty name is required in the `file` field.")
    return data.validated_data, upload
