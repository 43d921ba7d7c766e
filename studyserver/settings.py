"""Settings for studyserver, read from the environment (see README "Configuration")."""

import os
import zoneinfo
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from corsheaders.defaults import default_headers as cors_default_headers
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from .env import checked_redis_url, env_bool, env_int, env_list, env_origins, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# Embedded mode (no DATABASE_URL: the SQLite demo and local commands) defaults to DEBUG on; a deployment
# with a real database defaults to DEBUG off and must set SECRET_KEY.
DEBUG = env_bool("DEBUG", not env_str("DATABASE_URL"))
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "demo-only-insecure-key-set-SECRET_KEY-in-production"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
for _host in ALLOWED_HOSTS:  # Django compares host names: a URL or two names in one entry never match anything
    if "/" in _host or any(char.isspace() for char in _host):
        raise ImproperlyConfigured(f"ALLOWED_HOSTS takes host names separated by commas (example.com, .example.com, "
                                   f"*), got {_host!r}")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# Browser apps served from other origins (a web viewer, an app's dev server) may call the API, the feed and
# ingest: none by default, and then no CORS middleware runs at all (see MIDDLEWARE). The API's tokens travel in
# headers, so no cookies are allowed across origins: the admin and the browsable API's sessions stay same-origin.
CORS_ALLOWED_ORIGINS = env_origins("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/(api|publish|ingest)/"
CORS_ALLOW_HEADERS = (*cors_default_headers, "idempotency-key")
# 429/503 waits; a download's file name, and the part a range request got
CORS_EXPOSE_HEADERS = ("Retry-After", "Content-Disposition", "Content-Range")

INSTALLED_APPS = [
    "studyserver.admin.StudyAdminConfig",  # django.contrib.admin with a rate-limited login
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: no CDN, works offline
    "study",
    "publishing",
    "ingest",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "studyserver.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "studyserver.middleware.LengthRequiredMiddleware",  # before anything reads a body
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "studyserver.middleware.BackendUnavailableMiddleware",
]
if CORS_ALLOWED_ORIGINS:
    # After the security headers and the HTTPS redirect, before anything else that answers: it answers preflights
    # itself, and its headers go on every answer, errors included.
    MIDDLEWARE.insert(MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware"),
                      "corsheaders.middleware.CorsMiddleware")

ROOT_URLCONF = "studyserver.urls"
# Messages live in the session (the database), not in a signed but readable cookie: the token admin's one
# message carries a new API key.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Every API path answers with and without its slash (its routes take both), so this only sends an admin page typed
# without its slash (/admin, /admin/study/memocard/review) to the page, where it was a JSON 404.
APPEND_SLASH = True

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "studyserver.wsgi.application"
ASGI_APPLICATION = "studyserver.asgi.application"

# --- Database: DATABASE_URL, else an embedded SQLite file (demo) ---------------
try:
    DATABASES = {
        "default": dj_database_url.parse(
            env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
except ValueError as exc:  # dj-database-url's UnknownSchemeError and ParseError
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL (postgres://user@host:5432/name): {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's embedded database under a threaded runserver: transactions take the write lock when they
    # begin (a read transaction upgraded to a write fails at once with "database is locked" instead of
    # waiting), writers wait up to 20 s for each other, and WAL lets reads go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE", timeout=20, init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    # Tests on SQLite use a file next to it, like the demo (in memory, threads would share one cache with
    # table locks that fail at once instead of waiting).
    if DATABASES["default"]["NAME"] != ":memory:":
        DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}-test"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's ORM binds on the client (never prepared); the hot-path statements of studyserver.sqljson (JSON
    # bodies, card rating) bind on the server and are prepared after this many runs on a connection ("off":
    # never, e.g. behind a transaction-pooling PgBouncer older than 1.21).
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    if env_str("DATABASE_PREPARE_THRESHOLD").lower() == "off":
        _options["prepare_threshold"] = None
    else:
        try:
            _options["prepare_threshold"] = env_int("DATABASE_PREPARE_THRESHOLD", 2, minimum=0)
        except ImproperlyConfigured as exc:
            raise ImproperlyConfigured(f"{exc} (or off)") from None
    # A server that accepts the connection but never answers must not hang a request (or /healthz) for good.
    _options.setdefault("connect_timeout", 10)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache: Redis when REDIS_URL is set (throttling is shared across workers) -
# A Redis (cache or broker) that accepts connections but never answers costs a request, a task send or /healthz
# seconds, not forever. A worker's idle poll of the broker (BRPOP, 1 s) returns well within the read timeout.
REDIS_TIMEOUTS = {"socket_connect_timeout": 5, "socket_timeout": 5}
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    try:
        checked_redis_url(REDIS_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"REDIS_URL is not a Redis URL (redis://host:6379/0): {exc}") from None
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": REDIS_TIMEOUTS,
    }}
else:
    # Throttle counters per process; Django's default of 300 entries would let many addresses or names evict an
    # account's failed sign-ins.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "OPTIONS": {"MAX_ENTRIES": 10_000}}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "studyserver.passwords.ApiTokenRevokedOnChange"},  # its hook deletes the API token on a new password
]

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en-us").lower()
if not {LANGUAGE_CODE, LANGUAGE_CODE.split("-")[0]} & {code for code, _ in global_settings.LANGUAGES}:
    raise ImproperlyConfigured(f"LANGUAGE_CODE must be a language Django knows (en-us, ko, ja, …), "
                               f"got {LANGUAGE_CODE!r}")
TIME_ZONE = env_str("TIME_ZONE", "Asia/Seoul")
try:  # (Django's own check raised a ValueError naming no variable)
    zoneinfo.ZoneInfo(TIME_ZONE)
except (ValueError, zoneinfo.ZoneInfoNotFoundError):
    raise ImproperlyConfigured(
        f"TIME_ZONE must be an IANA time zone name (Asia/Seoul, UTC, …), not {TIME_ZONE!r}."
    ) from None
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files -------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")

if MEDIA_ROOT.exists() and not MEDIA_ROOT.is_dir():
    raise ImproperlyConfigured(f"MEDIA_ROOT must be a directory (made when missing), got the file {MEDIA_ROOT}")

STORAGE_BACKEND = env_str("STORAGE_BACKEND", "filesystem").lower()
if STORAGE_BACKEND == "s3":
    if not env_str("AWS_STORAGE_BUCKET_NAME"):
        raise ImproperlyConfigured("AWS_STORAGE_BUCKET_NAME must be set when STORAGE_BACKEND is s3")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
elif STORAGE_BACKEND == "filesystem":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be 'filesystem' or 's3', got {STORAGE_BACKEND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

DOCUMENT_MAX_BYTES = env_int("DOCUMENT_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
# Content-Length may exceed max_bytes by this factor (multipart framing) before we refuse unread.
DOCUMENT_LENGTH_SLACK = 1.05
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temp file
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1)
FILE_UPLOAD_HANDLERS = [
    "study.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- Feature flags and the viewer channel ------------------------------------
VIEWER_SYNC_TOKEN = env_str("VIEWER_SYNC_TOKEN")
STUDY_PUBLISH_ENABLED = env_bool("STUDY_PUBLISH_ENABLED", True)
STUDY_INGEST_ENABLED = env_bool("STUDY_INGEST_ENABLED", True)
PUBLISH_SWEEP_SECONDS = env_int("PUBLISH_SWEEP_SECONDS", 30, minimum=1)  # 0 would make beat send sweeps nonstop
INGEST_MAX_ATTEMPTS = env_int("INGEST_MAX_ATTEMPTS", 2000, minimum=1)

# --- Background work backends --------------------------------------------------
EXPLAINER_URL = env_str("EXPLAINER_URL")
if EXPLAINER_URL:
    try:
        _explainer = urlsplit(EXPLAINER_URL)
        _explainer.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ImproperlyConfigured(f"EXPLAINER_URL is not a URL: {exc}") from None
    if _explainer.scheme not in ("http", "https") or not _explainer.hostname:
        raise ImproperlyConfigured(f"EXPLAINER_URL must be an http(s) URL (http://127.0.0.1:11434/v1), "
                                   f"got {EXPLAINER_URL!r}")
EXPLAINER_MODEL = env_str("EXPLAINER_MODEL", "gpt-4o-mini")
EXPLAINER_API_KEY = env_str("EXPLAINER_API_KEY")
EXPLAINER_TIMEOUT_SECONDS = env_int("EXPLAINER_TIMEOUT_SECONDS", 30, minimum=1, maximum=3600)
OCR_LANGUAGES = env_str("OCR_LANGUAGES", "kor+jpn+eng")
TESSERACT_CMD = env_str("TESSERACT_CMD", "tesseract")
OCR_TIMEOUT_SECONDS = env_int("OCR_TIMEOUT_SECONDS", 120, minimum=1)
OCR_MAX_PIXELS = env_int("OCR_MAX_PIXELS", 40_000_000, minimum=1)  # larger images are skipped before being decoded
EXTRACT_MAX_PAGES = env_int("EXTRACT_MAX_PAGES", 500, minimum=1)  # PDF pages read per document
EXTRACT_MAX_CHARS = env_int("EXTRACT_MAX_CHARS", 300_000, minimum=1)  # text kept per document: fits the FTS index
EXPLAINER_MAX_ATTEMPTS = env_int("EXPLAINER_MAX_ATTEMPTS", 3, minimum=1, maximum=10)
# Doubled after each failed attempt.
EXPLAINER_RETRY_BACKOFF_MS = env_int("EXPLAINER_RETRY_BACKOFF_MS", 1000, minimum=0, maximum=60_000)

# --- Celery: a broker when CELERY_BROKER_URL is set, else eager after commit ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if CELERY_BROKER_URL:  # the transport options below are Redis's; anything else would be retried forever as AMQP
    try:
        scheme = urlsplit(CELERY_BROKER_URL).scheme
        if scheme not in {"redis", "rediss", "redis+socket"}:  # kombu's Redis transport (sentinel:// would need
            raise ValueError("the scheme must be redis://, rediss:// or redis+socket://")  # a master_name option)
        if scheme in {"redis", "rediss"}:
            checked_redis_url(CELERY_BROKER_URL)
    except ValueError as exc:
        raise ImproperlyConfigured(f"CELERY_BROKER_URL is not a Redis URL (redis://host:6379/0): {exc}") from None
# Celery reads CELERY_BROKER_URL from the environment itself, before these settings and as it was set: it gets the
# value read here (with " redis://…/1 " it connected to localhost with the virtual host "…/1 ").
if "CELERY_BROKER_URL" in os.environ:
    if CELERY_BROKER_URL:
        os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
    else:
        del os.environ["CELERY_BROKER_URL"]
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = env_bool("CELERY_TASK_EAGER_PROPAGATES", False)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://localhost/"  # eager sends still take a producer; a host keeps kombu quiet
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes a worker's database connections around every task unless this is set: a new
# PostgreSQL connection per task (~330 a minute under load). With it, a connection is kept across tasks; the
# task_prerun/postrun hook in celery.py closes one that is broken or older than DATABASE_CONN_MAX_AGE, as Django
# does around each request, and the fixup still closes them all every 1,000 tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:  # the soft limit lets a task clean up before the kill
    raise ImproperlyConfigured(f"CELERY_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT}) must be below "
                               f"CELERY_TASK_TIME_LIMIT ({CELERY_TASK_TIME_LIMIT})")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish kick must fail fast when the broker is down: the outbox keeps the work.
# An unacknowledged task (its worker died) is delivered again after CELERY_VISIBILITY_TIMEOUT seconds;
# keep it above the longest task time limit and retry countdown.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
    **REDIS_TIMEOUTS,
}
if env_str("CELERY_BROKER_KEY_PREFIX"):  # several installs (or test runs) sharing one Redis database
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = env_str("CELERY_BROKER_KEY_PREFIX")
CELERY_TIMEZONE = TIME_ZONE
# Two queues, so a backlog of slow work never delays the feed's publish drains. A worker without -Q
# consumes both; `-Q celery` and `-Q slow` workers split them (README "Workers").
CELERY_TASK_DEFAULT_QUEUE = "celery"  # Celery's own default: messages sent before the split are still consumed
CELERY_SLOW_QUEUE = env_str("CELERY_SLOW_QUEUE").strip() or "slow"
if CELERY_SLOW_QUEUE == CELERY_TASK_DEFAULT_QUEUE:
    raise ImproperlyConfigured(f"CELERY_SLOW_QUEUE must differ from the default queue {CELERY_TASK_DEFAULT_QUEUE!r}")
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name)
                      for name in (CELERY_TASK_DEFAULT_QUEUE, CELERY_SLOW_QUEUE)]
# The one routing table. Every task not listed runs on the default queue: the publish drain, the beat sweeps
# (publishing.tasks.publish_drain / publish_sweep, study.tasks.analyses_sweep / extracts_sweep) and the
# explanations fan-out (study.tasks.explain_questions), which only sends one explain_question per id.
CELERY_TASK_ROUTES = {
    "study.tasks.extract_document": {"queue": CELERY_SLOW_QUEUE},  # text extraction and OCR: up to minutes
    "study.tasks.explain_question": {"queue": CELERY_SLOW_QUEUE},  # the explainer model, then card generation
    "study.tasks.analyze_quiz_session": {"queue": CELERY_SLOW_QUEUE},  # aggregates the user's topic history
    "study.tasks.orphan_files_sweep": {"queue": CELERY_SLOW_QUEUE},  # lists the whole file store
}
# Sweeps expire after one period: while no worker runs, beat's copies do not pile up in the queue.
CELERY_BEAT_SCHEDULE = {
    "publish-sweep": {
        "task": "publishing.tasks.publish_sweep",
        "schedule": float(PUBLISH_SWEEP_SECONDS),
        "options": {"expires": float(PUBLISH_SWEEP_SECONDS)},
    },
    "analyses-sweep": {
        "task": "study.tasks.analyses_sweep",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
    "explanations-sweep": {  # only sends: the explanations themselves go to the slow queue
        "task": "study.tasks.explanations_sweep",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
    "extracts-sweep": {  # only sends: the extractions themselves go to the slow queue
        "task": "study.tasks.extracts_sweep",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
    "orphan-files-sweep": {  # at a time of day, not 24 h after beat started: a beat restarted daily still runs it
        "task": "study.tasks.orphan_files_sweep",
        "schedule": crontab(hour=4, minute=17),  # in TIME_ZONE
        "options": {"expires": 86400.0},
    },
    "sessions-sweep": {  # expired admin sign-ins (studyserver/sessions.py): one DELETE
        "task": "studyserver.sessions.expired_sessions_sweep",
        "schedule": crontab(hour=4, minute=47),  # in TIME_ZONE
        "options": {"expires": 86400.0},
    },
    # One to each queue, for /healthz's "workers" (studyserver/heartbeat.py).
    **{f"worker-heartbeat-{queue}": {
        "task": "studyserver.heartbeat.worker_heartbeat",
        "schedule": 60.0,
        "args": (queue,),
        "options": {"queue": queue, "expires": 60.0},
    } for queue in (CELERY_TASK_DEFAULT_QUEUE, CELERY_SLOW_QUEUE)},
}
CELERY_IMPORTS = ("studyserver.heartbeat", "studyserver.sessions")  # their tasks are not in an app's tasks module

# --- REST framework ----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "studyserver.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "studyserver.parsers.JSONParser",
        "studyserver.parsers.FormParser",
        "studyserver.parsers.MultiPartParser",
    ],
    # JSON only in production. DRF's browsable API (text/html) is for development: it renders a body as an HTML
    # page ~20 times its size, with forms, so one list of large sessions took gigabytes of a worker's memory.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "studyserver.negotiation.ContentNegotiation",
    "DEFAULT_PAGINATION_CLASS": "studyserver.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "studyserver.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env_rate("THROTTLE_AUTH_RATE", "20/min"),
        "viewer": env_rate("THROTTLE_VIEWER_RATE", "120/min"),
        # Failed sign-ins per account, from all addresses together (studyserver.throttling.AccountSignInThrottle).
        "auth_account": env_rate("THROTTLE_AUTH_ACCOUNT_RATE", "50/hour"),
    },
    # 0: throttles key on the connection's address. (DRF's default, None, trusts X-Forwarded-For as sent,
    # so a client could pick a new identity per request and never be throttled.)
    "NUM_PROXIES": env_int("NUM_PROXIES", 0, minimum=0),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "studyserver API",
    "DESCRIPTION": "Study server for certification exams and languages: topics, documents, "
    "handwriting sessions, quizzes, memo cards, the viewer feed and write-back.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Without auth: an app still holding a revoked (or malformed) token got a 401, in YAML, for the schema.
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "studyserver.schema.declare_common_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "QuizStatusEnum": "study.models.quizzes.QuizStatus",
        "OutcomeEnum": "study.models.quizzes.Outcome",
    },
}

# --- Security (production: DEBUG off; see README) -------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]  # (with and without its slash, as every path)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Off only for a trusted network without TLS (browsers drop secure cookies over plain http: no admin login).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own console handler would print every django.* record a second time next to the root's.
    "loggers": {"django": {"handlers": [], "level": LOG_LEVEL}, "django.db.backends": {"level": "WARNING"}},
}
