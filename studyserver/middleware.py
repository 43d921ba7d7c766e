"""Content-Security-Policy header on every response (Django 5.2 has no built-in CSP), 411 for a body sent without
its length, and 503 for a database that is away outside the API."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .errors import BackendUnavailable, backend_unavailable, error_body

logger = logging.getLogger(__name__)

HEADER = "Content-Security-Policy"

# Pages of our own (admin, review queue): same-origin everything, no plugins, no framing.
DEFAULT_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Served uploads: nothing in them may run, even if a browser renders one.
DOWNLOAD_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"


class ContentSecurityPolicyMiddleware:
    """Adds a CSP header unless the view set one; stricter for attachments. (The API docs need no exception:
    Swagger UI comes from our static files and starts from a script file, see urls.py.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response:
            return response
        if response.has_header("Content-Disposition"):
            policy = DOWNLOAD_POLICY
        else:
            policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_POLICY)
        if policy:
            response[HEADER] = policy
        return response


class LengthRequiredMiddleware:
    """A body sent in chunks (`Transfer-Encoding` without `Content-Length`) is a 411 `length_required`.

    Django reads a request's body up to its `Content-Length` and takes a missing one as 0: the body would be read
    as empty, and a create answered as if its fields were missing. A client told 411 sends the length (RFC 9110);
    a proxy that buffers request bodies (nginx does by default) sends it for the client."""

    METHODS = frozenset({"POST", "PUT", "PATCH"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (request.method in self.METHODS and request.META.get("HTTP_TRANSFER_ENCODING")
                and not request.META.get("CONTENT_LENGTH")):
            return JsonResponse(error_body("length_required", "Send the body with a Content-Length header."),
                                status=411)
        return self.get_response(request)


class BackendUnavailableMiddleware:
    """Outside DRF (the admin, the review queue): a database that is away or busy answers 503 with Retry-After, as
    the API does, instead of the 500 page of a bug. Innermost, so it sees the view's exception first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not backend_unavailable(exception):
            return None
        logger.error("database failure answered 503: %s", exception, exc_info=exception)
        response = HttpResponse(
            "<!doctype html><title>Unavailable</title><h1>The database is not available right now</h1>"
            "<p>Nothing was saved. Please try again in a few seconds.</p>",
            status=503,
        )
        response["Retry-After"] = str(BackendUnavailable.wait)
        return response
