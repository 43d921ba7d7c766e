"""Typed environment readers: throttle rates."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from studyserver.env import env_bool, env_int, env_rate
from studyserver.testing import load_settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, "20/min"), ("", "20/min"), ("5/s", "5/s"), (" 100/Hour ", "100/hour"), ("off", None), ("OFF", None)],
)
def test_env_rate(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("SOME_RATE", raising=False)
    else:
        monkeypatch.setenv("SOME_RATE", raw)
    assert env_rate("SOME_RATE", "20/min") == expected


@pytest.mark.parametrize("raw", ["20", "20/fortnight", "x/min", "-1/min", "none"])
def test_malformed_rate_is_a_startup_error(monkeypatch, raw):
    monkeypatch.setenv("SOME_RATE", raw)
    with pytest.raises(ImproperlyConfigured, match="SOME_RATE"):
        env_rate("SOME_RATE", "20/min")


def test_django_records_are_printed_once_by_the_root_handler():
    """Django's default config gives the `django` logger a console handler of its own; with ours on the root
    too, every warning (a 404, a 400) would be printed twice."""
    import logging

    django_logger = logging.getLogger("django")
    assert django_logger.handlers == [] and django_logger.propagate
    assert logging.getLogger().handlers


@pytest.mark.parametrize("raw", ["0", "-5"])
def test_a_publish_sweep_period_below_one_second_is_a_startup_error(raw):
    """0 would make beat send sweeps as fast as it can (thousands a second)."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "PUBLISH_SWEEP_SECONDS": raw, "DJANGO_SETTINGS_MODULE": "studyserver.settings"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=settings.BASE_DIR,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "PUBLISH_SWEEP_SECONDS must be at least 1" in result.stderr


def test_beat_sweeps_expire_after_their_period():
    from celery.schedules import crontab
    from django.conf import settings

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        daily = isinstance(entry["schedule"], crontab)  # at a time of day: its period is a day
        assert entry["options"]["expires"] == (24 * 3600 if daily else entry["schedule"])


@pytest.mark.parametrize(("url", "test_name"), [
    ("sqlite:////tmp/demo.sqlite3", "/tmp/demo.sqlite3-test"),  # a file next to it, as the demo's
    ("sqlite://:memory:", None),  # Django's own in-memory test database, not a file named ":memory:-test"
])
def test_sqlite_settings_for_the_demo_and_its_tests(url, test_name):
    import os
    import subprocess
    import sys

    from django.conf import settings

    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "studyserver.settings"}
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            "d = s.DATABASES['default']; print(json.dumps([d['OPTIONS'], d['TEST'].get('NAME')]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    options, name = json.loads(result.stdout.strip().splitlines()[-1])
    # Writers take the lock when they begin and wait for each other instead of failing with "database is locked".
    assert options["transaction_mode"] == "IMMEDIATE" and options["timeout"] == 20
    assert "journal_mode=WAL" in options["init_command"]
    assert name == test_name


# --- blank means the default; nonsense stops the start, naming the variable -------------------------------------


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_variable_means_its_default(monkeypatch, blank):
    """Compose passes `${NAME:-}` as an empty value: publishing stayed on only by luck of the reader."""
    loaded = load_settings(monkeypatch, STUDY_PUBLISH_ENABLED=blank, STUDY_INGEST_ENABLED=blank, TIME_ZONE=blank,
                           OCR_LANGUAGES=blank, LOG_LEVEL=blank, LANGUAGE_CODE=blank, DOCUMENT_MAX_BYTES=blank,
                           ALLOWED_HOSTS=blank, THROTTLE_AUTH_RATE=blank, EXPLAINER_MODEL=blank, DEBUG="true")
    assert loaded.STUDY_PUBLISH_ENABLED is True and loaded.STUDY_INGEST_ENABLED is True
    assert (loaded.TIME_ZONE, loaded.OCR_LANGUAGES, loaded.LOG_LEVEL, loaded.LANGUAGE_CODE) == (
        "Asia/Seoul", "kor+jpn+eng", "INFO", "en-us")
    assert loaded.DOCUMENT_MAX_BYTES == 50 * 1024 * 1024 and loaded.EXPLAINER_MODEL == "gpt-4o-mini"
    assert loaded.ALLOWED_HOSTS == ["127.0.0.1", "localhost"]
    assert loaded.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"] == "20/min"


def test_values_are_read_without_their_surrounding_whitespace(monkeypatch):
    loaded = load_settings(monkeypatch, VIEWER_SYNC_TOKEN=" secret\n", LOG_LEVEL="warning ",
                           STORAGE_BACKEND=" FileSystem")
    assert loaded.VIEWER_SYNC_TOKEN == "secret"  # the client's header is read stripped: both sides now match
    assert loaded.LOG_LEVEL == "WARNING" and loaded.LOGGING["loggers"]["django"]["level"] == "WARNING"
    assert loaded.STORAGE_BACKEND == "filesystem"


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://redis.example.com:6380/0",
                                 "redis+socket:///var/run/redis/redis.sock"])
def test_every_redis_broker_url_kombu_takes_is_accepted(monkeypatch, url):
    loaded = load_settings(monkeypatch, CELERY_BROKER_URL=url)
    broker, eager = loaded.CELERY_BROKER_URL, loaded.CELERY_TASK_ALWAYS_EAGER
    assert broker == url and not eager


@pytest.mark.parametrize(("value", "expected"), [("  redis://127.0.0.1:6379/13 ", "redis://127.0.0.1:6379/13"),
                                               ("   ", "memory://localhost/")])
def test_celery_connects_to_the_broker_url_as_the_settings_read_it(value, expected):
    """Celery reads CELERY_BROKER_URL from the environment before its configuration: with spaces around it, the
    web process and the workers connected to localhost with the virtual host "127.0.0.1:6379/13 " (every send
    failed), and a blank one made them AMQP clients."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import django; django.setup(); from django.conf import settings; from studyserver.celery import app; "
            "print(settings.CELERY_BROKER_URL); print(app.conf.broker_url)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "studyserver.settings", "DEBUG": "true",
           "CELERY_BROKER_URL": value}
    found = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], env=env,
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[-2:] == [expected, expected]


def test_manage_py_stops_on_a_bad_value_with_one_line():
    """It printed a 55-line traceback whose last line named the variable."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DEBUG": "true", "NUM_PROXIES": "-1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    found = subprocess.run([sys.executable, "manage.py", "check"], cwd=Path(__file__).resolve().parents[2], env=env,
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 1
    assert found.stderr == "Configuration error: NUM_PROXIES must be at least 0, got -1\n"


def test_a_blank_secret_key_is_no_secret_key(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        load_settings(monkeypatch, SECRET_KEY="   ", DEBUG="false")


def test_the_cors_middleware_runs_only_where_origins_are_configured(monkeypatch):
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    assert "corsheaders.middleware.CorsMiddleware" not in load_settings(monkeypatch).MIDDLEWARE
    loaded = load_settings(monkeypatch, CORS_ALLOWED_ORIGINS=" https://viewer.example.com, http://localhost:5173 ")
    assert loaded.CORS_ALLOWED_ORIGINS == ["https://viewer.example.com", "http://localhost:5173"]
    # After the security headers and the HTTPS redirect, before whatever else may answer.
    position = loaded.MIDDLEWARE.index("corsheaders.middleware.CorsMiddleware")
    assert loaded.MIDDLEWARE[position - 2: position + 2] == [
        "django.middleware.security.SecurityMiddleware", "studyserver.middleware.ContentSecurityPolicyMiddleware",
        "corsheaders.middleware.CorsMiddleware", "whitenoise.middleware.WhiteNoiseMiddleware"]


@pytest.mark.parametrize(("value", "origin"), [
    ("HTTPS://Viewer.Example.com", "https://viewer.example.com"),  # browsers send scheme and host in lower case
    ("https://viewer.example.com:443", "https://viewer.example.com"),  # and no default port
    ("http://localhost:80", "http://localhost"),
    ("http://localhost:5173", "http://localhost:5173"),
    ("https://bücher.example", "https://xn--bcher-kva.example"),  # an international name as its ASCII form
    ("http://[0:0::1]:5173", "http://[::1]:5173"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
])
def test_cors_origins_are_read_as_a_browser_sends_them(monkeypatch, value, origin):
    loaded = load_settings(monkeypatch, CORS_ALLOWED_ORIGINS=value)
    assert [origin] == loaded.CORS_ALLOWED_ORIGINS


@pytest.mark.parametrize(("name", "value"), [
    ("DATABASE_URL", "garbage"),
    ("DATABASE_URL", "postgres://postgres@127.0.0.1:notaport/studyserver"),
    ("DATABASE_CONN_MAX_AGE", "-1"),
    ("REDIS_URL", "redis://127.0.0.1:notaport/0"),
    ("REDIS_URL", "127.0.0.1:6379"),
    ("CELERY_BROKER_URL", "redis//127.0.0.1:6379/4"),  # else read as an AMQP host and retried forever
    ("CELERY_BROKER_URL", "http://127.0.0.1:6379/0"),
    ("CELERY_BROKER_URL", "sentinel://127.0.0.1:26379"),  # kombu would need a master_name no setting gives
    ("CELERY_BROKER_URL", "redis://127.0.0.1:notaport/0"),
    # a database that is no number: redis-py dropped it (database 0, the broker's in the README's example)
    ("REDIS_URL", "redis://127.0.0.1:6379/1x3"),
    ("CELERY_BROKER_URL", "redis://127.0.0.1:6379/abc"),
    ("ALLOWED_HOSTS", "https://study.example.com/"),
    ("ALLOWED_HOSTS", "a.example.com b.example.com"),
    ("CORS_ALLOWED_ORIGINS", "viewer.example.com"),
    ("CORS_ALLOWED_ORIGINS", "https://viewer.example.com/"),  # an Origin never ends in a slash: it would never match
    ("CORS_ALLOWED_ORIGINS", "ftp://viewer.example.com"),
    ("CORS_ALLOWED_ORIGINS", "https://viewer.example.com:notaport"),
    ("CORS_ALLOWED_ORIGINS", "https://viewer.example.com:"),
    ("CORS_ALLOWED_ORIGINS", "https://user@viewer.example.com"),
    ("CORS_ALLOWED_ORIGINS", "https://*.example.com"),  # compared as text: a wildcard would match nothing
    ("CORS_ALLOWED_ORIGINS", "https://exa mple.com"),
    ("CORS_ALLOWED_ORIGINS", "null"),
    ("LANGUAGE_CODE", "xx-yy"),
    ("TIME_ZONE", "Mars/Base"),  # Django's own check raised a ValueError that named no variable
    ("TIME_ZONE", "../etc/passwd"),
    ("LOG_LEVEL", "loud"),
    ("STORAGE_BACKEND", "s4"),
    ("EXPLAINER_URL", "127.0.0.1:11434/v1"),
    ("EXPLAINER_URL", "http://127.0.0.1:notaport/v1"),
    ("EXPLAINER_URL", "ftp://127.0.0.1/v1"),
    ("EXPLAINER_TIMEOUT_SECONDS", "0"),
    ("EXPLAINER_MAX_ATTEMPTS", "2000"),
    ("EXPLAINER_RETRY_BACKOFF_MS", "-5000"),
    ("NUM_PROXIES", "-1"),
    ("DOCUMENT_MAX_BYTES", "-5"),
    ("DATA_UPLOAD_MAX_MEMORY_SIZE", "0"),
    ("INGEST_MAX_ATTEMPTS", "0"),
    ("EXTRACT_MAX_CHARS", "-5"),
    ("EXTRACT_MAX_PAGES", "-1"),
    ("OCR_TIMEOUT_SECONDS", "0"),
    ("OCR_MAX_PIXELS", "-5"),
    ("SECURE_HSTS_SECONDS", "-5"),
    ("CELERY_VISIBILITY_TIMEOUT", "0"),
    ("CELERY_TASK_SOFT_TIME_LIMIT", "300"),  # not below the hard limit (300)
    ("THROTTLE_AUTH_RATE", "0/min"),
])
def test_a_value_that_cannot_mean_what_its_name_says_stops_the_start(monkeypatch, name, value):
    with pytest.raises(ImproperlyConfigured, match=name):
        load_settings(monkeypatch, **{name: value})


def test_s3_storage_needs_a_bucket_and_media_root_a_directory(monkeypatch, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="AWS_STORAGE_BUCKET_NAME"):
        load_settings(monkeypatch, STORAGE_BACKEND="s3")
    monkeypatch.delenv("STORAGE_BACKEND")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    with pytest.raises(ImproperlyConfigured, match="MEDIA_ROOT"):
        load_settings(monkeypatch, MEDIA_ROOT=str(a_file))
    assert tmp_path / "missing" == load_settings(monkeypatch, MEDIA_ROOT=str(tmp_path / "missing")).MEDIA_ROOT


def test_the_prepare_threshold_error_names_off_too(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_PREPARE_THRESHOLD must be an integer.*\(or off\)"):
        load_settings(monkeypatch, DATABASE_URL="postgres://postgres@127.0.0.1:5432/x",
                      DATABASE_PREPARE_THRESHOLD="none")
    loaded = load_settings(monkeypatch, DATABASE_PREPARE_THRESHOLD=" OFF ")
    assert loaded.DATABASES["default"]["OPTIONS"]["prepare_threshold"] is None
    assert loaded.DATABASES["default"]["OPTIONS"]["connect_timeout"] == 10  # an unanswering server fails, not hangs


@pytest.mark.parametrize(("reader", "raw", "expected"), [
    ("bool", "", True), ("bool", " off ", False), ("int", " ", 7), ("int", " 12 ", 12), ("list", "", ["d"]),
    ("list", "a, ,b,", ["a", "b"]), ("str", "\t", "d"), ("str", " v ", "v"),
])
def test_readers_treat_blank_as_unset(monkeypatch, reader, raw, expected):
    from studyserver import env

    monkeypatch.setenv("SOME_VALUE", raw)
    defaults = {"bool": True, "int": 7, "list": ["d"], "str": "d"}
    assert getattr(env, f"env_{reader}")("SOME_VALUE", defaults[reader]) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("0", "SOME_NUMBER must be between 1 and 10, got 0"), ("11", "SOME_NUMBER must be between 1 and 10, got 11"),
    ("1.5", "SOME_NUMBER must be an integer, got '1.5'"),
])
def test_int_bounds(monkeypatch, raw, message):
    monkeypatch.setenv("SOME_NUMBER", raw)
    with pytest.raises(ImproperlyConfigured) as raised:
        env_int("SOME_NUMBER", 3, minimum=1, maximum=10)
    assert str(raised.value) == message


@pytest.mark.django_db
def test_a_visibility_timeout_below_a_task_time_limit_is_a_system_check_error(settings):
    from study.checks import visibility_timeout_outlasts_every_task
    from studyserver.testing import celery_conf

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS, "visibility_timeout": 360}
    with celery_conf(task_always_eager=False):
        errors = visibility_timeout_outlasts_every_task(None)
        assert [error.id for error in errors] == ["study.E001"]
        assert "(360 s, study.tasks.extract_document)" in errors[0].msg  # its hard limit is 360 s: not above it
        assert errors[0].hint == "Raise CELERY_VISIBILITY_TIMEOUT (default 3600)."  # the explainer is not the cause
        settings.EXPLAINER_TIMEOUT_SECONDS = 1200  # the explain task's derived limit grows past the default 3600
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                                                    "visibility_timeout": 3600}
        # (a run that found a question claimed is retried once the claim, lasting that limit, has ended)
        [error] = visibility_timeout_outlasts_every_task(None)
        assert "explain_question's retry after another run's claim" in error.msg
        assert error.hint.endswith(", or lower the explainer's timeouts.")
        settings.EXPLAINER_TIMEOUT_SECONDS = 30
        assert visibility_timeout_outlasts_every_task(None) == []
    assert visibility_timeout_outlasts_every_task(None) == []  # eager: no broker redelivers anything


def test_manage_py_check_sees_the_tasks_of_every_app():
    """Outside a worker, autodiscovery had imported no app's tasks: `check` walked study's (imported by the check)
    and missed publishing's, the ones the default time limit governs, in a process of its own."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DEBUG": "true", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
           "CELERY_TASK_TIME_LIMIT": "4000", "CELERY_TASK_SOFT_TIME_LIMIT": "3900"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    found = subprocess.run([sys.executable, "manage.py", "check"], cwd=Path(__file__).resolve().parents[2], env=env,
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "(study.E001) CELERY_VISIBILITY_TIMEOUT (3600 s) must be above the longest task time limit (4000 s, " \
           "publishing.tasks.publish_" in found.stderr


@pytest.mark.django_db
def test_a_starting_worker_logs_what_the_celery_checks_find(settings, caplog):
    from studyserver.celery import report_configuration_errors
    from studyserver.testing import celery_conf

    with celery_conf(task_always_eager=False):
        report_configuration_errors()
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                                                    "visibility_timeout": 300}
        report_configuration_errors()
    assert [r.getMessage().split(" ")[1] for r in caplog.records if r.levelname == "ERROR"] == ["(study.E001)"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("ON", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("Off", False),
    ],
)
def test_the_boolean_words(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env_bool("SOME_FLAG", not expected) is expected


@pytest.mark.parametrize("raw", ["2", "enabled", "y", "t"])
def test_any_other_boolean_word_stops_the_start(monkeypatch, raw):
    monkeypatch.setenv("SOME_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match=r"SOME_FLAG must be a boolean \(true/false\)"):
        env_bool("SOME_FLAG", True)


@pytest.mark.parametrize(
    ("raw", "minimum", "maximum", "expected"),
    [("1", 1, 10, 1), ("10", 1, 10, 10), ("0", 0, None, 0), ("-3", None, -3, -3)],
)
def test_int_bounds_are_inclusive(monkeypatch, raw, minimum, maximum, expected):
    monkeypatch.setenv("SOME_NUMBER", raw)
    assert env_int("SOME_NUMBER", 3, minimum=minimum, maximum=maximum) == expected


@pytest.mark.parametrize(
    ("raw", "minimum", "maximum", "message"),
    [
        ("0", 1, None, "SOME_NUMBER must be at least 1, got 0"),
        ("11", None, 10, "SOME_NUMBER must be at most 10, got 11"),
    ],
)
def test_a_one_sided_bound_says_which(monkeypatch, raw, minimum, maximum, message):
    monkeypatch.setenv("SOME_NUMBER", raw)
    with pytest.raises(ImproperlyConfigured) as raised:
        env_int("SOME_NUMBER", 3, minimum=minimum, maximum=maximum)
    assert str(raised.value) == message
