"""Question endpoints: CRUD (soft delete), import (JSON or CSV), review complete."""

import csv
import io
import itertools
import re

from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from study.models import Question
from study.selectors.questions import questions_list, questions_with_detail
from study.services.progress import question_review_complete
from study.services.questions import (
    question_create,
    question_delete,
    question_update,
    questions_import,
)
from study.services.topics import topic_get_live
from study.textnorm import nfc, subject_label
from studyserver.errors import BodyTooLarge, EmptyFile, InvalidInput, NotFound, field_errors
from studyserver.parsers import FormParser, JSONParser, MultiPartParser

from .common import FilterSet, IdFilter, error_responses, id_field, path_id
from .question_serializers import (
    ProgressSerializer,
    QuestionCreateSerializer,
    QuestionDetailSerializer,
    QuestionFieldsSerializer,
    QuestionImportResultSerializer,
    QuestionImportSerializer,
    QuestionSerializer,
)

MAX_IMPORT_ROWS = 5000
CSV_IMPORT_MAX_BYTES = 10 * 1024 * 1024  # 5,000 questions of ~2 KB each
_CHOICE_COLUMN = re.compile(r"^choice_([0-9]{1,3})$")  # ASCII digits (\d matches "１" and "١" too)
_REQUIRED_COLUMNS = ("subject", "question_text", "correct_choice")
_KNOWN_COLUMNS = (*_REQUIRED_COLUMNS, "explanation")


class QuestionFilter(FilterSet):
    study_topic_id = IdFilter(field_name="study_topic_id")
    subject = filters.CharFilter(method="filter_subject", max_length=200)
    q = filters.CharFilter(method="filter_q", max_length=200)

    class Meta:
        model = Question
        fields = ["study_topic_id", "subject", "q"]

    # Subjects and texts are stored NFC (study.services.questions): so is what is looked for.
    def filter_subject(self, queryset, name, value):
        return queryset.filter(subject=subject_label(value))

    def filter_q(self, queryset, name, value):
        return queryset.filter(question_text__icontains=nfc(value))


class CsvImportSerializer(serializers.Serializer):
    """Multipart import: the topic and a UTF-8 CSV file."""

    study_topic_id = id_field()
    file = serializers.FileField(allow_empty_file=True)  # an empty file answers `empty_file`


def _header_columns(header: list[str]) -> tuple[list[int], dict[str, int]]:
    """The indexes of choice_1..choice_N in order, and of each other known column; a header that leaves one out,
    names one twice (`choice_1`, `choice_01`) or numbers the choices other than 1..N is refused, rather than
    guessed at. (More choice columns than a question may have are fine: each row's own choices are checked.)"""
    missing = [name for name in _REQUIRED_COLUMNS if name not in header]
    choices = {}
    for index, name in enumerate(header):
        if match := _CHOICE_COLUMN.match(name):
            choices.setdefault(int(match.group(1)), []).append(index)
        elif name.startswith("choice"):
            raise InvalidInput(f"The CSV header has a column that is no choice_N: {name[:40]}.")
    if missing or not choices:
        needed = ", ".join([*missing, *([] if choices else ["choice_1..choice_N"])])
        raise InvalidInput(f"The CSV header lacks: {needed}.")
    twice = [name for name in _KNOWN_COLUMNS if header.count(name) > 1]
    twice += [f"choice_{number}" for number, indexes in sorted(choices.items()) if len(indexes) > 1]
    if twice:
        raise InvalidInput(f"The CSV header names a column more than once: {', '.join(twice)}.")
    if sorted(choices) != list(range(1, len(choices) + 1)):
        found = ", ".join(f"choice_{number}" for number in sorted(choices))
        raise InvalidInput(f"The choice columns must be choice_1..choice_N with none left out (found: {found}).")
    column = {name: header.index(name) for name in _KNOWN_COLUMNS if name in header}
    return [choices[number][0] for number in sorted(choices)], column


def _csv_rows(upload) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(row number, raw question) per CSV record, and the errors of records refused whole; the header is row 1.
    UTF-8, BOM tolerated. A quote left open is refused with the line it opened on (a lenient reader read the
    rest of the file into that one cell and imported the rows before it); a record with a value beyond the last
    header column is a row error (its cells were taken as they came, a stray comma shifting every value).

    The file is read record by record and no further than MAX_IMPORT_ROWS: a 20 MB file of short lines, read
    whole and split before its rows were counted, took 1.2 GB of a worker's memory to answer "too many rows"."""
    if upload.size > CSV_IMPORT_MAX_BYTES:
        raise BodyTooLarge(f"A CSV import is at most {CSV_IMPORT_MAX_BYTES // (1024 * 1024)} MiB.")
    upload.seek(0)
    text = io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")
    reader, read_to_line = csv.reader(text, strict=True), 0
    try:
        header_record = next(reader, None)
        if header_record is None:
            raise EmptyFile()
        header = [name.strip().lower() for name in header_record]
        choice_columns, column = _header_columns(header)
        records, read_to_line = [], reader.line_num
        for record in itertools.islice(reader, MAX_IMPORT_ROWS + 1):
            records.append(record)
            read_to_line = reader.line_num
    except UnicodeDecodeError:
        raise InvalidInput("The CSV file must be UTF-8 encoded.") from None
    except csv.Error as exc:
        raise InvalidInput(f"The CSV file could not be read from line {read_to_line + 1} on: {exc}.") from None
    finally:
        text.detach()  # the upload stays open for whoever closes it
    if len(records) > MAX_IMPORT_ROWS:
        raise InvalidInput(f"At most {MAX_IMPORT_ROWS} rows per import.")

    def cell(record: list[str], index: int | None) -> str:
        return record[index].strip() if index is not None and index < len(record) else ""

    rows, errors = [], []
    for number, record in enumerate(records, start=2):
        if not any(value.strip() for value in record):
            continue
        if any(value.strip() for value in record[len(header):]):
            message = f"The row has more values than the header has columns ({len(header)})."
            errors.append({"row": number, "errors": {"non_field_errors": [message]}})
            continue
        choices = [cell(record, index) for index in choice_columns]
        while choices and not choices[-1]:
            choices.pop()
        row = {
            "subject": cell(record, column["subject"]),
            "question_text": cell(record, column["question_text"]),
            "choices": choices,
            "correct_choice": cell(record, column["correct_choice"]),
            "explanation": cell(record, column.get("explanation")),
        }
        rows.append((number, row))
    return rows, errors


@extend_schema_view(
    list=extend_schema(
        summary="List questions", responses={200: QuestionSerializer(many=True), **error_responses(400)}
    ),
)
class QuestionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The user's questions."""

    serializer_class = QuestionSerializer
    filterset_class = QuestionFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return Question.objects.none()
        if self.action == "retrieve":
            return questions_with_detail(user=self.request.user)
        return questions_list(user=self.request.user)

    def get_object(self) -> Question:
        return get_object_or_404(self.get_queryset(), pk=path_id(self.kwargs["pk"]))

    @extend_schema(
        request=QuestionCreateSerializer,
        responses={201: QuestionSerializer, **error_responses(400, 404)},
    )
    def create(self, request: Request) -> Response:
        body = QuestionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        question = question_create(user=request.user, **body.validated_data)
        return Response(QuestionSerializer(question).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: QuestionDetailSerializer, **error_responses(404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(QuestionDetailSerializer(self.get_object()).data)

    @extend_schema(
        request=QuestionFieldsSerializer(partial=True),
        responses={200: QuestionSerializer, **error_responses(400, 404)},
        description="Only the fields sent change. A new answer key (`correct_choice` or `choices`) drops the "
        "question's `ai_explanation` and the cards made from it that wait for review; the question is explained "
        "again when the learner's last answer to it was wrong or unsure.",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        question = self.get_object()
        body = QuestionFieldsSerializer(instance=question, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        question = question_update(question=question, data=body.validated_data)
        return Response(QuestionSerializer(question).data)

    @extend_schema(responses={204: None, **error_responses(404)})
    def destroy(self, request: Request, pk: str) -> Response:
        if not question_delete(question=self.get_object()):  # deleted meanwhile by a concurrent request
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Import questions (JSON body or CSV upload)",
        description="Valid rows are created in one transaction even when others fail. `row` is the 1-based "
        "index in `questions` (JSON) or the CSV record number counting the header as row 1. At most 5,000 rows "
        "(400 beyond); a CSV file is UTF-8 and at most 10 MiB (413 `body_too_large` beyond).",
        request={
            "application/json": QuestionImportSerializer,
            "multipart/form-data": CsvImportSerializer,
        },
        responses={200: QuestionImportResultSerializer, **error_responses(400, 404, 413)},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[JSONParser, MultiPartParser, FormParser],
    )
    def import_questions(self, request: Request) -> Response:
        if "file" in request.FILES or request.content_type.startswith("multipart/"):
            body = CsvImportSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            topic = topic_get_live(user=request.user, topic_id=body.validated_data["study_topic_id"])
            raw_rows, errors = _csv_rows(body.validated_data["file"])
        else:
            body = QuestionImportSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            topic = topic_get_live(user=request.user, topic_id=body.validated_data["study_topic_id"])
            raw_rows, errors = list(enumerate(body.validated_data["questions"], start=1)), []

        valid = []
        for number, raw in raw_rows:
            if not isinstance(raw, dict):
                errors.append({"row": number, "errors": {"non_field_errors": ["Expected an object."]}})
                continue
            row = QuestionFieldsSerializer(data=raw)
            if row.is_valid():
                valid.append(row.validated_data)
            else:
                errors.append({"row": number, "errors": field_errors(row.errors)})
        created = questions_import(user=request.user, topic=topic, rows=valid)
        return Response({"created": len(created), "errors": sorted(errors, key=lambda error: error["row"])})

    @extend_schema(
        summary="Review complete: the question enters (or re-enters) the SR queue, due tomorrow",
        request=None,
        responses={200: ProgressSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["post"], url_path="review-complete")
    def review_complete(self, request: Request, pk: str) -> Response:
        progress = question_review_complete(user=request.user, question_id=path_id(pk))
        return Response(ProgressSerializer(progress).data)
