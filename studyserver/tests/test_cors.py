"""Browser apps on the origins in CORS_ALLOWED_ORIGINS may call the API, the feed and ingest; nothing else may."""

import pytest
from rest_framework.test import APIClient

from studyserver.testing import load_settings

pytestmark = pytest.mark.django_db

VIEWER = "https://viewer.example.com"


@pytest.fixture
def cross_origin(settings, monkeypatch):
    """The settings a start with CORS_ALLOWED_ORIGINS=https://viewer.example.com gives."""
    started = load_settings(monkeypatch, CORS_ALLOWED_ORIGINS=VIEWER)
    settings.CORS_ALLOWED_ORIGINS, settings.MIDDLEWARE = started.CORS_ALLOWED_ORIGINS, started.MIDDLEWARE
    return settings


def preflight(client: APIClient, path: str, method: str, headers: str, origin: str = VIEWER):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


def test_a_preflight_from_an_allowed_origin_is_answered(cross_origin, anon_client):
    response = preflight(anon_client, "/api/study-cards/7/rate", "POST", "authorization, content-type, idempotency-key")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == VIEWER
    allowed = {name.strip() for name in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response  # tokens travel in headers: no cookies across origins


def test_answers_to_an_allowed_origin_carry_its_headers_errors_too(cross_origin, api_client, anon_client):
    response = api_client.get("/api/study-sessions", headers={"Origin": VIEWER})
    assert response.status_code == 200 and response.json()["count"] == 0
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert response["Access-Control-Expose-Headers"] == "Retry-After, Content-Disposition, Content-Range"
    assert "origin" in response["Vary"].lower()
    refused = anon_client.get("/api/study-sessions", headers={"Origin": VIEWER})
    assert refused.status_code == 401 and refused.json()["error_code"] == "not_authenticated"
    assert refused["Access-Control-Allow-Origin"] == VIEWER  # the app can read why


def test_the_viewer_channel_answers_an_allowed_origin(cross_origin, anon_client):
    cross_origin.VIEWER_SYNC_TOKEN = "viewer-token"
    response = anon_client.get("/publish/feed", headers={"Origin": VIEWER, "Authorization": "Bearer viewer-token"})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == VIEWER
    assert preflight(anon_client, "/ingest/study/attempts", "POST", "authorization, content-type")[
        "Access-Control-Allow-Origin"] == VIEWER


@pytest.mark.parametrize("origin", ["https://evil.example.com", "http://viewer.example.com",
                                    "https://viewer.example.com:8443", "null"])
def test_another_origin_gets_no_cors_headers(cross_origin, api_client, origin):
    response = api_client.get("/api/study-sessions", headers={"Origin": origin})
    assert response.status_code == 200  # served as to any client; the browser keeps it from the page
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Origin" not in preflight(api_client, "/api/study-sessions", "GET", "authorization",
                                                          origin=origin)


def test_the_admin_and_healthz_stay_same_origin(cross_origin, anon_client):
    for path in ["/admin/login/", "/healthz"]:
        response = anon_client.get(path, headers={"Origin": VIEWER})
        assert response.status_code == 200, path
        assert "Access-Control-Allow-Origin" not in response, path


def test_a_preflight_meets_the_https_redirect_and_the_security_headers_first(cross_origin, anon_client):
    response = preflight(anon_client, "/api/study-sessions", "GET", "authorization")
    assert response["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in response
    cross_origin.SECURE_SSL_REDIRECT = True  # read when a client's middleware is built: a new client
    redirected = preflight(APIClient(), "/api/study-sessions", "GET", "authorization")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")


def test_no_origin_is_allowed_unless_configured(api_client):
    response = preflight(api_client, "/api/study-sessions", "GET", "authorization")
    assert "Access-Control-Allow-Origin" not in response
    answer = api_client.get("/api/study-sessions", headers={"Origin": VIEWER})
    assert "Access-Control-Allow-Origin" not in answer
    assert "origin" not in answer.get("Vary", "").lower()  # no CORS middleware ran at all

