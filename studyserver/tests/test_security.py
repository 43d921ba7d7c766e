"""Security hardening: check --deploy, production settings, headers (CSP), safe downloads, staff-only admin."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from study.tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


def _production_env(**extra: str) -> dict:
    inherited = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "BEHIND_PROXY",
                 "DJANGO_ALLOW_ASYNC_UNSAFE"}  # set in-process by the browser tests; never in production
    env = {k: v for k, v in os.environ.items() if k not in inherited}
    env.update(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(60), ALLOWED_HOSTS="study.example.com", **extra)
    return env


def _production_settings(**extra: str) -> dict:
    """Import the settings in a fresh interpreter with production-like env and return the security ones."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "names = ['SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', "
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_CONTENT_TYPE_NOSNIFF', 'SECURE_REFERRER_POLICY', "
        "'X_FRAME_OPTIONS', 'SECURE_PROXY_SSL_HEADER', 'DEBUG', 'MIDDLEWARE', 'REST_FRAMEWORK']; "
        "print(json.dumps({n: getattr(settings, n) for n in names}))"
    )
    env = _production_env(DJANGO_SETTINGS_MODULE="studyserver.settings", **extra)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_under_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=_production_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_are_secure_by_default():
    values = _production_settings()
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_REFERRER_POLICY"] in {"same-origin", "strict-origin-when-cross-origin", "no-referrer"}
    assert "studyserver.middleware.ContentSecurityPolicyMiddleware" in values["MIDDLEWARE"]
    assert values["SECURE_PROXY_SSL_HEADER"] is None  # trusting X-Forwarded-Proto is opt-in
    # no browsable API: an HTML rendering of a large body took gigabytes of memory
    assert values["REST_FRAMEWORK"]["DEFAULT_RENDERER_CLASSES"] == ["rest_framework.renderers.JSONRenderer"]


def test_behind_a_proxy_the_forwarded_proto_is_trusted_and_the_redirect_can_be_left_to_it():
    values = _production_settings(BEHIND_PROXY="true", SECURE_SSL_REDIRECT="false")
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is False


def test_secure_cookies_can_be_turned_off_for_a_lan_without_tls():
    values = _production_settings(SECURE_COOKIES="false", SECURE_SSL_REDIRECT="false")
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["DEBUG"] is False


@pytest.fixture
def production_like(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_but_healthz_is_exempt(api_client, production_like):
    response = api_client.get("/api/ping")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert api_client.get("/healthz").status_code == 200
    assert api_client.get("/healthz/").status_code == 200  # every path works with its slash too (API.md)
    assert api_client.get("/healthzx").status_code == 301


@pytest.mark.django_db
def test_secure_responses_carry_hsts_nosniff_referrer_frame_and_csp_headers(api_client, production_like):
    response = api_client.get("/api/ping", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert "unsafe-eval" not in csp


def test_error_pages_carry_the_csp_too(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_api_docs_are_self_hosted_and_run_under_the_strict_policy(client):
    """Swagger UI from our own static files (no CDN: a self-hosted server may have no internet), started by a
    script file rather than an inline script, so the page needs no relaxed policy."""
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn.jsdelivr.net" not in html and "<script>" not in html.replace(" ", "")
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    csp = page["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "unsafe-inline' https" not in csp and "jsdelivr" not in csp
    script = client.get("/api/docs?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/schema" in script.content.decode()


def test_ping_requires_authentication(anon_client):
    response = anon_client.get("/api/ping")
    assert response.status_code == 401
    assert response.json()["error_code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("evil.html", b"<html><script>alert(1)</script></html>", "text/html"),
        ("evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
        ("page.xhtml", b"<html xmlns='http://www.w3.org/1999/xhtml'><script>1</script></html>",
         "application/xhtml+xml"),
        ("notes.txt", b"<script>alert(1)</script>", "text/html"),  # a lying content type
    ],
)
def test_uploads_are_served_as_attachments_with_a_content_type_a_browser_will_not_run(
    api_client, name, content, content_type
):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    created = api_client.post("/api/documents", {"file": upload}, format="multipart")
    assert created.status_code == 201, created.content
    response = api_client.get(f"/api/documents/{created.json()['id']}/download")
    assert response.status_code == 200
    served_type = response["Content-Type"].split(";")[0].strip().lower()
    assert served_type not in {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml",
                               "application/xml", "application/javascript", "text/javascript"}
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == content


@pytest.mark.django_db
def test_another_users_download_is_404(api_client, other_client):
    upload = SimpleUploadedFile("mine.txt", b"private notes", content_type="text/plain")
    document_id = api_client.post("/api/documents", {"file": upload}, format="multipart").json()["id"]
    response = other_client.get(f"/api/documents/{document_id}/download")
    assert response.status_code == 404


ADMIN_PAGES = ["/admin/", "/admin/study/memocard/", "/admin/study/document/", "/admin/study/studytopic/",
               "/admin/publishing/published/", "/admin/publishing/publishoutbox/"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_is_closed_to_anonymous_and_non_staff_users(client, path):
    anonymous = client.get(path)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    client.force_login(UserFactory(is_staff=False))
    logged_in = client.get(path)
    assert logged_in.status_code == 302
    assert logged_in["Location"].startswith("/admin/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_is_open_to_staff(client, path):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(path).status_code == 200


@pytest.mark.django_db
def test_a_token_does_not_open_the_admin(api_client):
    response = api_client.get("/admin/")
    assert response.status_code == 302


def _settings_process(env: dict) -> subprocess.CompletedProcess:
    code = "import django; from django.conf import settings; django.setup(); print(settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_a_deployment_with_a_database_defaults_to_debug_off_and_requires_a_secret_key():
    env = _production_env(DJANGO_SETTINGS_MODULE="studyserver.settings",
                          DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")
    del env["DEBUG"], env["SECRET_KEY"]
    result = _settings_process(env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr
    env["SECRET_KEY"] = secrets.token_urlsafe(60)
    assert _settings_process(env).stdout.strip() == "False"


def test_the_embedded_mode_without_a_database_url_defaults_to_debug_on():
    env = _production_env(DJANGO_SETTINGS_MODULE="studyserver.settings")
    for name in ("DEBUG", "SECRET_KEY", "DATABASE_URL"):
        env.pop(name, None)
    result = _settings_process(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


@pytest.mark.django_db
def test_admin_login_is_rate_limited_like_the_token_endpoint(settings, client):
    from study.tests.factories import UserFactory
    from studyserver.testing import fresh_address

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "3/min"},
    }
    staff = UserFactory(username="staff-login", is_staff=True)
    staff.set_password("right-password-1")
    staff.save()
    address = fresh_address()

    def login(password: str, remote: str = address):
        return client.post("/admin/login/", {"username": "staff-login", "password": password}, REMOTE_ADDR=remote)

    assert [login(f"guess-{n}").status_code for n in range(3)] == [200, 200, 200]  # the form again, with an error
    blocked = login("right-password-1")
    assert blocked.status_code == 429 and int(blocked["Retry-After"]) > 0
    assert "_auth_user_id" not in client.session
    assert login("right-password-1", remote=fresh_address()).status_code == 302  # another address logs in
    assert client.get("/admin/login/", REMOTE_ADDR=address).status_code in (200, 302)  # the page itself is not limited
