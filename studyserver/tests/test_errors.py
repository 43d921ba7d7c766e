"""studyserver.errors.exception_handler: which error answers which status and `error_code` (API.md "Errors")."""

from urllib.parse import urlencode

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError, connection, transaction
from django.http import Http404

from studyserver.errors import exception_handler
from studyserver.testing import postgresql_operational_error

pytestmark = pytest.mark.django_db


def answer(exc: BaseException) -> tuple[int, dict]:
    response = exception_handler(exc, {"view": None, "request": None})
    return response.status_code, response.data


def integrity_error(sql: str) -> IntegrityError:
    """The IntegrityError Django raises for `sql`: PostgreSQL's own, naming its constraint and SQLSTATE."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    return caught.value


@pytest.fixture
def tables():
    """Two temporary tables with one constraint of each kind the handler tells apart."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE TEMP TABLE t_parent (id int PRIMARY KEY);
            CREATE TEMP TABLE t_child (
                id int CONSTRAINT t_child_id_uniq UNIQUE,
                n int CONSTRAINT t_child_n_chk CHECK (n > 0),
                m int CONSTRAINT t_child_same_owner_chk CHECK (m > 0),
                parent int CONSTRAINT t_child_parent_fk REFERENCES t_parent (id),
                owner int CONSTRAINT t_child_owner_same_owner_fk REFERENCES t_parent (id)
            );
            INSERT INTO t_parent VALUES (1);
            INSERT INTO t_child (id) VALUES (1);
        """)


@pytest.mark.postgresql
@pytest.mark.parametrize(
    ("sql", "status", "code"),
    [
        ("INSERT INTO t_child (id) VALUES (1)", 409, "conflict"),  # unique (23505)
        ("INSERT INTO t_child (n) VALUES (0)", 409, "conflict"),  # a check (23514): a row an older version stored
        ("INSERT INTO t_child (parent) VALUES (2)", 409, "conflict"),  # a foreign key (23503)
        ("INSERT INTO t_child (m) VALUES (0)", 404, "not_found"),  # the link triggers' `_same_owner_chk`
        ("INSERT INTO t_child (owner) VALUES (2)", 404, "not_found"),  # the composite `_same_owner_fk`
    ],
    ids=["unique", "check", "foreign-key", "same-owner-check", "same-owner-fk"],
)
def test_a_constraint_violation_is_409_conflict_and_a_same_owner_rule_404(tables, sql, status, code):
    """A race the service did not anticipate is a conflict, never a 500 (nor a 400: the request was valid); another
    user's row that got past the scoped lookups does not exist to this user (SPEC "Ownership": 404, never 403)."""
    answered, body = answer(integrity_error(sql))
    assert (answered, body["error_code"]) == (status, code)


def test_djangos_404_and_403_get_the_codes_of_drfs():
    """A view or a helper raising Django's Http404 / PermissionDenied answers as DRF's NotFound / PermissionDenied:
    same status, and the stable code clients switch on (not `error`)."""
    assert answer(Http404("no such row")) == (404, {"error_code": "not_found", "detail": "Not found."})
    status, body = answer(DjangoPermissionDenied())
    assert (status, body["error_code"]) == (403, "permission_denied")


def test_text_that_is_not_valid_unicode_is_400_invalid():
    """A UnicodeError under a request (a lone surrogate no encoding holds) is bad input, not a 500."""
    status, body = answer(UnicodeEncodeError("utf-8", "a\ud800", 1, 2, "surrogates not allowed"))
    assert (status, body["error_code"], body["errors"]) == (
        400,
        "invalid",
        {"non_field_errors": ["The text is not valid Unicode."]},
    )


def test_an_unsupported_method_and_an_unacceptable_accept_have_their_codes(api_client):
    response = api_client.delete("/api/study-topics")  # the list has no DELETE
    assert (response.status_code, response.json()["error_code"]) == (405, "method_not_allowed")
    response = api_client.get("/api/study-topics", HTTP_ACCEPT="application/xml")
    assert (response.status_code, response.json()["error_code"]) == (406, "not_acceptable")


@pytest.mark.parametrize(
    "sqlstate",
    [None, "08006", "53100", "53300", "57014", "57P01", "58000", "58030", "55P03"],
    ids=["no-sqlstate", "connection", "disk-full", "too-many-connections", "cancelled", "shutdown", "system", "io",
         "lock-timeout"],
)
def test_a_database_that_is_away_or_out_of_resources_is_503_with_retry_after(sqlstate):
    """Connection exceptions (08), insufficient resources (53), operator intervention (57) and system errors (58)
    are the server's state, not the statement's: worth a retry."""
    response = exception_handler(postgresql_operational_error(sqlstate), {"view": None, "request": None})
    assert (response.status_code, response.data["error_code"], response["Retry-After"]) == (503, "unavailable", "5")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_write_that_outwaits_an_operators_lock_timeout_is_503_and_changes_nothing(api_client, user):
    """An operator's `lock_timeout` (ALTER ROLE … SET lock_timeout) ran out while the rename waited for the topic's
    row, which other work held: the database is busy (a 503 to retry), not a bug (a 500)."""
    from django.db import connections

    from study.models import StudyTopic
    from study.tests.factories import StudyTopicFactory

    topic = StudyTopicFactory(user=user, name="before")
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            holder.set_autocommit(False)
            cursor.execute("SELECT 1 FROM study_studytopic WHERE id = %s FOR UPDATE", [topic.pk])
            with connection.cursor() as ours:
                ours.execute("SET lock_timeout = '100ms'")
            try:
                response = api_client.patch(f"/api/study-topics/{topic.pk}", {"name": "after"}, format="json")
            finally:
                with connection.cursor() as ours:
                    ours.execute("RESET lock_timeout")
        holder.rollback()
    finally:
        holder.close()
    assert (response.status_code, response.json()["error_code"], response["Retry-After"]) == (503, "unavailable", "5")
    assert StudyTopic.objects.get(pk=topic.pk).name == "before"


@pytest.mark.parametrize("sqlstate", ["54000", "54001"])
def test_a_statement_the_database_refuses_each_time_is_left_a_server_error(sqlstate):
    assert exception_handler(postgresql_operational_error(sqlstate), {"view": None, "request": None}) is None  # (500)


@pytest.mark.postgresql
def test_a_value_the_database_cannot_hold_is_400_invalid():
    """A DataError (out of range, malformed) that validation let through is the request's fault, not a 500."""
    with pytest.raises(DataError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 2147483647::int + 1")
    assert answer(caught.value) == (
        400,
        {
            "error_code": "invalid",
            "detail": "Invalid input.",
            "errors": {"non_field_errors": ["A value is out of range or malformed."]},
        },
    )


@pytest.mark.parametrize("form", ["json", "multipart", "urlencoded"])
def test_a_body_over_the_upload_memory_limit_is_413_body_too_large(api_client, user, settings, form):
    """Django refuses a body (other than files) over DATA_UPLOAD_MAX_MEMORY_SIZE with RequestDataTooBig: a 413
    `body_too_large`, as API.md lists it, not a 500."""
    from study.models import StudySession

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"topic": "x" * 3000}
    if form == "urlencoded":
        response = api_client.post(
            "/api/study-sessions", urlencode(body), content_type="application/x-www-form-urlencoded"
        )
    else:
        response = api_client.post("/api/study-sessions", body, format=form)
    assert (response.status_code, response.json()["error_code"]) == (413, "body_too_large")
    assert not StudySession.objects.filter(user=user).exists()


def test_a_missing_file_is_not_a_failure_of_the_file_store():
    """file_store_failed leaves a missing file (404) to file_missing: a 503 would tell clients to retry for good."""
    from botocore.exceptions import ClientError

    from studyserver.errors import file_missing, file_store_failed

    no_such_key = ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
    for gone in (FileNotFoundError("gone"), no_such_key):
        assert file_missing(gone) and not file_store_failed(gone)
    for broken in (PermissionError("denied"), ClientError({"Error": {"Code": "NoSuchBucket"}}, "GetObject")):
        assert file_store_failed(broken) and not file_missing(broken)


def test_a_404_to_a_head_request_is_a_missing_file():
    """A HEAD has no body, so S3's answer to one has no error code of its own: botocore reports the status, "404".
    Read as a failure of the store, a missing file would be a 503 that tells clients to retry for good."""
    from botocore.exceptions import ClientError

    from studyserver.errors import file_missing, file_store_failed

    head_404 = ClientError({"Error": {"Code": "404"}}, "HeadObject")
    assert file_missing(head_404) and not file_store_failed(head_404)


@pytest.mark.parametrize("path", ["/api/topics", "/publish/feed", "/admin/login/"])
def test_a_host_outside_allowed_hosts_is_a_json_400_invalid(client, path):
    """Django refuses it before any view runs (DisallowedHost): handler400 answers as the API does, without
    repeating Django's message, which names the setting to change."""
    response = client.get(path, HTTP_HOST="elsewhere.example")
    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    message = "This server does not answer for that host name."
    assert response.json() == {"error_code": "invalid", "detail": message, "errors": {"non_field_errors": [message]}}


def test_too_many_fields_in_an_admin_form_is_a_json_400_invalid(admin_client, settings):
    """Outside DRF (the admin's CSRF check reads the form first), Django's TooManyFieldsSent reaches handler400."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    response = admin_client.post("/admin/study/document/add/", {f"f{n}": "x" for n in range(10)})
    assert (response.status_code, response.json()["error_code"], response.json()["detail"]) == (
        400, "invalid", "Too many fields.")
