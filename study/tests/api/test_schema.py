"""OpenAPI: the schema and Swagger UI are served, and describe this area's endpoints, filters, enums and errors."""

import re

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db

OWN_VIEWS = ("topics.py", "documents.py", "sessions.py", "auth.py", "common.py")


@pytest.fixture(scope="module")
def schema_and_warnings(django_db_blocker):
    import io
    import sys

    with django_db_blocker.unblock():
        captured, out = io.StringIO(), io.StringIO()
        old = sys.stderr
        sys.stderr = captured
        try:
            call_command("spectacular", "--validate", stdout=out)
        finally:
            sys.stderr = old
    return yaml.safe_load(out.getvalue()), captured.getvalue()


def test_no_schema_warnings_for_this_area(schema_and_warnings):
    _, warnings = schema_and_warnings
    own = [line for line in warnings.splitlines() if any(f"study/api/{name}" in line for name in OWN_VIEWS)]
    assert own == []


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/auth/token", "post"),
        ("/api/study-topics", "post"),
        ("/api/study-topics/{id}", "get"),
        ("/api/study-topics/{id}/documents", "post"),
        ("/api/study-topics/{id}/documents/{document_id}", "delete"),
        ("/api/study-topics/by-document/{document_id}", "get"),
        ("/api/documents", "post"),
        ("/api/documents/{id}/download", "get"),
        ("/api/study-sessions", "get"),
        ("/api/study-sessions/groups", "get"),
        ("/api/study-sessions/{id}/assets", "post"),
        ("/api/study-sessions/{id}/assets/{asset_id}", "delete"),
        ("/api/study-sessions/{id}/snapshot", "post"),
    ],
)
def test_paths_are_described(schema_and_warnings, path, method):
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    assert method in paths[path], sorted(paths)


def test_filters_enums_and_errors_are_described(schema_and_warnings):
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    session_list = paths["/api/study-sessions"]["get"]
    params = {p["name"]: p for p in session_list["parameters"]}
    for name in ("study_type", "mode", "review_state", "asset_type", "order", "document_id", "due_before",
                 "study_topic_id", "limit", "offset"):  # fmt: skip
        assert name in params, name
    assert set(params["order"]["schema"]["enum"]) == {"created_at", "next_review_at", "last_quiz_at"}
    assert {"format", "tag", "study_topic_id", "q"} <= {p["name"] for p in paths["/api/documents"]["get"]["parameters"]}
    create = paths["/api/study-topics"]["post"]["responses"]
    assert {"201", "400", "401", "409"} <= set(create)
    assert create["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    upload = paths["/api/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "413" in upload["responses"]


@pytest.mark.parametrize("authorization", [None, "Token a-revoked-or-unknown-key", "Token", "Token a b"])
def test_schema_and_docs_are_served_without_auth(client, authorization):
    """Whatever the request carries: an app holding a revoked (or a malformed) token got a 401, in YAML."""
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    for path in ("/api/schema", "/api/schema/", "/api/docs"):
        assert client.get(path, **headers).status_code == 200, path


def test_every_id_in_a_path_is_an_integer(schema_and_warnings):
    """API.md: ids are integers. A path id described as any string has no invalid value a client or fuzzer can
    derive, and generated clients would type it as a string."""
    schema, _ = schema_and_warnings
    not_integers = [
        (path, method, parameter["name"], parameter["schema"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["schema"].get("type") != "integer"
    ]
    assert not_integers == []


def test_every_operation_declares_the_errors_drf_gives_before_the_view(schema_and_warnings):
    """401 wherever a login is needed and 415 wherever a body is read: DRF answers both before any view runs, so
    no view declares them, and a client checking statuses against the schema met undeclared answers."""
    schema, _ = schema_and_warnings
    missing = [
        (path, method, status)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for status, needed in (("401", {} not in operation.get("security", [{}])), ("415", "requestBody" in operation))
        if needed and status not in operation["responses"]
    ]
    assert missing == []
    login = schema["paths"]["/api/auth/token/"]["post"]
    assert "401" not in login["responses"] and "415" in login["responses"]
    assert schema["paths"]["/api/study-cards/"]["get"]["responses"]["401"]["content"]["application/json"]


def test_answers_given_before_the_view_are_declared_on_every_operation(schema_and_warnings, api_client, user,
                                                                        settings):
    """An Accept header nothing satisfies (406, before the view) and a browser session's write without its CSRF
    token (403, before the view): each operation declares what it answers to them."""
    schema, _ = schema_and_warnings
    settings.VIEWER_SYNC_TOKEN = "viewer-secret"
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    undeclared = []
    for path, operations in schema["paths"].items():
        url = re.sub(r"{[^}]+}", "1", path)
        viewer = {"HTTP_AUTHORIZATION": "Bearer viewer-secret"} if path.startswith(("/publish", "/ingest")) else {}
        for method, operation in operations.items():
            picky = api_client.generic(method.upper(), url, HTTP_ACCEPT="application/x-nothing", **viewer)
            answers = [("picky", picky.status_code)]
            if method in {"post", "put", "patch", "delete"} and not viewer:
                answers.append(("no csrf", browser.generic(method.upper(), url, "{}", "application/json").status_code))
            undeclared += [(path, method, who, code) for who, code in answers
                           if str(code) not in operation["responses"]]
    assert undeclared == []
    cards = schema["paths"]["/api/study-cards/"]
    assert {"403", "406"} <= set(cards["post"]["responses"]) and "403" not in cards["get"]["responses"]
    assert "406" not in schema["paths"]["/api/documents/{id}/download/"]["get"]["responses"]  # answers any Accept


def test_bodies_are_typed_as_api_md_says(schema_and_warnings):
    """What a client generated from the schema relies on: defaults the server applies, objects and string lists."""
    schema, _ = schema_and_warnings
    components = schema["components"]["schemas"]
    create = components["StudySessionCreateRequest"]["properties"]
    assert (create["study_type"]["default"], create["mode"]["default"]) == ("certification", "copy")
    for name in ("StudySessionCreateRequest", "PatchedStudySessionPatchRequest", "StudySession"):
        for field in ("metadata", "strokes_json"):
            assert components[name]["properties"][field]["type"] == "object", (name, field)
    for name in ("Question", "QuizQuestion"):
        assert components[name]["properties"]["choices"]["items"] == {"type": "string"}, name


def test_card_errors_have_the_error_body(schema_and_warnings):
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    for path, method, code in [("/api/study-cards", "post", "409"), ("/api/study-cards/{id}", "patch", "404"),
                               ("/api/study-cards/{id}/rate", "post", "400"), ("/api/study-cards/due", "get", "400")]:
        response = paths[path][method]["responses"][code]
        assert response["content"]["application/json"]["schema"]["$ref"].endswith("/Error"), (path, method, code)


def test_the_error_body_names_its_optional_fields(schema_and_warnings):
    """A 409 quiz_in_progress carries the session's id, an ingest refusal the skipped pub_ids, the feed's 409 its
    last seq."""
    schema, _ = schema_and_warnings
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail", "error_code"]
    assert error["properties"]["id"]["type"] == "integer"
    assert error["properties"]["skipped"]["items"] == {"type": "string"}
    assert error["properties"]["last_seq"]["type"] == "integer"


@pytest.mark.parametrize("path", ["/api/study-cards", "/api/study-cards/due", "/api/study-cards/deck"])
def test_a_card_lists_limit_says_it_starts_at_1(schema_and_warnings, path):
    """`limit=0` is a 400: the schema said any integer, and a client built from it sent 0."""
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    [limit] = [p for p in paths[path]["get"]["parameters"] if p["name"] == "limit"]
    assert limit["schema"] == {"type": "integer", "minimum": 1}


@pytest.mark.parametrize(("path", "method"), [
    ("/api/documents/{id}/download", "get"),
    ("/api/documents", "post"),
    ("/api/study-sessions/{id}/snapshot", "post"),
])
def test_file_store_endpoints_declare_their_503_with_retry_after(schema_and_warnings, path, method):
    """A file store that fails under a download or an upload is 503 `unavailable` with Retry-After
    (studyserver/tests/test_faults.py): clients reading the schema learn to retry it."""
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    unavailable = paths[path][method]["responses"]["503"]
    assert unavailable["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert unavailable["headers"]["Retry-After"]["schema"] == {"type": "integer"}


@pytest.mark.parametrize(("path", "method"), [
    ("/api/documents", "post"),
    ("/api/study-sessions/{id}/snapshot", "post"),
])
def test_an_upload_says_its_file_is_required(schema_and_warnings, path, method):
    """Without the file the upload is a 400; the schema had marked `file` optional and the body as a whole too."""
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    body = paths[path][method]["requestBody"]
    assert body["required"] is True
    name = body["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "file" in schema["components"]["schemas"][name]["required"]


def test_the_current_quiz_sessions_topic_id_starts_at_1(schema_and_warnings):
    schema, _ = schema_and_warnings
    paths = {p.rstrip("/"): ops for p, ops in schema["paths"].items()}
    [topic] = paths["/api/quiz-sessions/current"]["get"]["parameters"]
    assert topic["required"] is True and topic["schema"]["minimum"] == 1


def test_no_operation_is_described_by_a_developers_docstring(schema_and_warnings):
    """drf-spectacular takes the first docstring among a view's classes: a mixin's note on `get_object()` described
    18 operations of the API docs, and the sessions list's its PostgreSQL fast path."""
    schema, _ = schema_and_warnings
    described = [(path, method, op["description"]) for path, ops in schema["paths"].items()
                 for method, op in ops.items() if isinstance(op, dict) and op.get("description")]
    assert len(described) >= 10
    for path, method, text in described:
        assert not re.search(r"get_object|get_queryset|viewset|PostgreSQL|serializer", text), (path, method, text)
