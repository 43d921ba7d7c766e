"""studyserver.middleware: which Content-Security-Policy a response gets; a body sent without its length."""

import io
import json

import pytest
from django.core.wsgi import get_wsgi_application
from django.http import FileResponse, HttpResponse
from django.test import RequestFactory
from rest_framework.authtoken.models import Token

from study.models import StudyTopic
from studyserver.middleware import DEFAULT_POLICY, DOWNLOAD_POLICY, HEADER, ContentSecurityPolicyMiddleware


def policy_of(response: HttpResponse) -> str | None:
    answered = ContentSecurityPolicyMiddleware(lambda request: response)(RequestFactory().get("/"))
    return answered.get(HEADER)


def test_a_page_gets_the_default_policy():
    assert policy_of(HttpResponse("<p>page</p>")) == DEFAULT_POLICY


def test_an_attachment_gets_the_policy_that_runs_nothing():
    """A served upload must not run even if a browser renders it: no source allowed, sandboxed, never framed."""
    assert policy_of(FileResponse(io.BytesIO(b"<script>"), as_attachment=True, filename="x.html")) == DOWNLOAD_POLICY
    assert "sandbox" in DOWNLOAD_POLICY.split("; ") and "default-src 'none'" in DOWNLOAD_POLICY


def test_a_policy_the_view_set_is_kept():
    response = HttpResponse()
    response[HEADER] = "default-src 'none'; img-src 'self'"
    assert policy_of(response) == "default-src 'none'; img-src 'self'"


def call_wsgi(environ: dict) -> tuple[str, dict]:
    """The WSGI application production serves, called with `environ`: its status line and JSON body."""
    answered = {}

    def start_response(status, headers, exc_info=None):
        answered["status"] = status

    body = b"".join(get_wsgi_application()(environ, start_response))
    return answered["status"], json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_a_body_sent_in_chunks_is_411_length_required_and_creates_nothing(user):
    """Under gunicorn, a chunked body comes with `Transfer-Encoding` and no `CONTENT_LENGTH` (the environ below is
    what gunicorn 27 passed for `curl -H "Transfer-Encoding: chunked"`). Django takes the missing length as an empty
    body: the create would be answered as if its fields were missing (a 400 naming `name`)."""
    token = Token.objects.create(user=user)
    body = json.dumps({"name": "화학"}).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/study-topics", "SERVER_NAME": "testserver",
               "SERVER_PORT": "80", "HTTP_HOST": "testserver", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "wsgi.errors": io.StringIO(),
               "CONTENT_TYPE": "application/json", "HTTP_TRANSFER_ENCODING": "chunked",
               "HTTP_AUTHORIZATION": f"Token {token.key}"}
    status, answer = call_wsgi(environ)
    assert (status, answer["error_code"]) == ("411 Length Required", "length_required")
    assert not StudyTopic.objects.exists()


def test_only_a_body_without_its_length_is_refused(api_client, user):
    """An edit in chunks changes nothing; the same edit with its length goes through, and a chunked GET (no body
    to read) is not refused."""
    topic = StudyTopic.objects.create(user=user, name="화학")
    send = api_client.patch
    url = f"/api/study-topics/{topic.pk}"
    refused = send(url, {"name": "물리"}, format="json", HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert (refused.status_code, refused.json()["error_code"]) == (411, "length_required")
    topic.refresh_from_db()
    assert topic.name == "화학"
    assert api_client.get(url, HTTP_TRANSFER_ENCODING="chunked").status_code == 200
    assert send(url, {"name": "물리"}, format="json").status_code == 200


def test_a_body_in_chunks_that_says_its_length_is_not_refused(api_client, user):
    """Only a body Django cannot read is refused: one whose Content-Length is given along with the
    Transfer-Encoding is read up to that length, and refusing it for the header alone turned away a whole body."""
    topic = StudyTopic.objects.create(user=user, name="화학")
    response = api_client.patch(f"/api/study-topics/{topic.pk}", {"name": "물리"}, format="json",
                                HTTP_TRANSFER_ENCODING="chunked")  # (the test client sends the Content-Length)
    assert response.status_code == 200, response.content
    topic.refresh_from_db()
    assert topic.name == "물리"
