"""Typed environment readers: throttle rates."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from studyserver.env import env_rate


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
    from django.conf import settings

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["options"]["expires"] == entry["schedule"]


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
