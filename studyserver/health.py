"""Health check, and the JSON answers Django gives where no view answered: an unknown route (404), a request it
refused (handler400: a body too large, 413; a Host it does not serve or a malformed body, 400), a bug (500)."""

from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .caches import cache_is_shared
from .errors import body_too_large, error_body, refused_request_detail
from .heartbeat import workers_status


def _broker_status() -> str:
    from .celery import app

    if app.conf.task_always_eager:  # what Celery itself obeys (it reads CELERY_TASK_ALWAYS_EAGER)
        return "eager"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception:  # noqa: BLE001 - any broker failure means "down"
        return "down"


def _cache_status() -> str:
    """"local" for the in-process cache (no REDIS_URL); else whether Redis answers. Throttle counters live there."""
    if not cache_is_shared():
        return "local"
    try:
        cache.get("healthz")
        return "ok"
    except Exception:  # noqa: BLE001 - any cache failure means "down"
        return "down"


@csrf_exempt  # (a probe's POST is answered 405, not with the CSRF check's HTML 403)
@require_safe
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception:  # noqa: BLE001
        database = "down"
    broker = _broker_status()
    status = 200 if database == "ok" else 503
    cache_status = _cache_status()
    workers, seen = workers_status(cache_answers=cache_status == "ok")
    body = {"status": "ok" if status == 200 else "degraded", "database": database, "broker": broker,
            "cache": cache_status, "workers": workers}
    if seen:
        body["workers_seen_seconds_ago"] = seen
    return JsonResponse(body, status=status)


# It changes nothing, and a token client sends no CSRF cookie: without the exemption a write to an unknown
# path under /api/ would get Django's HTML 403 "CSRF verification failed" instead of this JSON 404.
@csrf_exempt
def not_found(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def bad_request(request, exception=None):
    """A request Django refused outside DRF's views, answered as the API answers errors instead of Django's HTML
    "Bad Request (400)": a body too large to read (an admin form, or the CSRF check before it) is a 413
    `body_too_large`; a `Host` outside ALLOWED_HOSTS (refused before any view runs, API paths included) and the
    other suspicious requests are a 400 `invalid`."""
    if isinstance(exception, RequestDataTooBig):
        error = body_too_large(exception)
        return JsonResponse(error_body(error.default_code, str(error.detail)), status=error.status_code)
    detail = refused_request_detail(exception) or "Bad request."
    return JsonResponse(error_body("invalid", detail, errors={"non_field_errors": [detail]}), status=400)


def server_error(request):
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
