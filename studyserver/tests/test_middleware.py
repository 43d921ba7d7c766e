"""studyserver.middleware.ContentSecurityPolicyMiddleware: which policy a response gets."""

import io

from django.http import FileResponse, HttpResponse
from django.test import RequestFactory

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
