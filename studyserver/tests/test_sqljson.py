"""studyserver.sqljson: JSON bodies from one prepared statement, still seen by Django's query counting."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from studyserver.sqljson import fetch_json, fetch_row, iso_datetime_sql, json_array_sql, json_list_sql

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = [pytest.mark.django_db, pytest.mark.postgresql]  # PostgreSQL SQL and triggers

ROWS = "SELECT * FROM (VALUES (2, 'b', %(x)s::int), (1, 'a\n\"q\"', NULL), (3, '😀', 7)) AS v(id, name, n)"


def test_array_keeps_fields_order_and_sorts_by_keys_outside_the_body():
    sql = json_array_sql(ROWS, fields="o.name, o.n AS number", order_by="o.id DESC")
    text = fetch_json(sql, {"x": 5})
    assert json.loads(text) == [{"name": "😀", "number": 7}, {"name": "b", "number": 5},
                                {"name": "a\n\"q\"", "number": None}]
    assert ", \n" not in text and text.startswith('[{"name":"😀","number":7},{')  # compact separators


def test_empty_array_and_nested_lists():
    empty = json_array_sql(ROWS + " WHERE false", fields="o.id", order_by="o.id")
    assert fetch_json(empty, {"x": 1}) == "[]"
    nested = json_list_sql("SELECT g FROM generate_series(1, o.id) g", fields="n.g AS k", order_by="n.g DESC")
    text = fetch_json(json_array_sql(ROWS, fields=f"o.id, {nested} AS ks", order_by="o.id"), {"x": 1})
    assert json.loads(text) == [{"id": 1, "ks": [{"k": 1}]}, {"id": 2, "ks": [{"k": 2}, {"k": 1}]},
                                {"id": 3, "ks": [{"k": 3}, {"k": 2}, {"k": 1}]}]


@pytest.mark.parametrize(
    "zone", ["UTC", "Asia/Seoul", "America/New_York", "Asia/Kathmandu", "America/St_Johns", "Africa/Monrovia"]
)
@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC), datetime(2026, 3, 8, 7, 0, 0, 1, tzinfo=UTC),
     datetime(2026, 11, 1, 5, 30, 0, 999999, tzinfo=UTC), datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
     datetime(1900, 5, 1, 12, 0, 0, 5, tzinfo=UTC), datetime(211, 1, 29, 9, 5, 0, tzinfo=UTC)],  # offsets in LMT
)
def test_datetimes_render_as_drf_does(settings, zone, moment):
    from rest_framework import serializers

    settings.TIME_ZONE = zone
    with timezone.override(zone):
        rendered = fetch_json(f"SELECT {iso_datetime_sql('%(t)s::timestamptz')}", {"t": moment})
        assert rendered == serializers.DateTimeField().to_representation(moment)
        assert fetch_row(f"SELECT {iso_datetime_sql('NULL::timestamptz')}", {})[0] is None


def test_statement_is_prepared_after_the_threshold_and_still_counted(settings):
    assert settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 2
    sql = json_array_sql(ROWS, fields="o.id", order_by="o.id") + " -- prepared-statement-test"
    with CaptureQueriesContext(connection) as queries:
        for _ in range(4):
            assert json.loads(fetch_json(sql, {"x": 1})) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert len(queries.captured_queries) == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%prepared-statement-test%"])
        assert cursor.fetchone()[0] == 1


@pytest.mark.parametrize(("value", "expected"), [("off", "None"), ("0", "0"), ("", "2"), ("7", "7")])
def test_prepare_threshold_setting(value, expected):
    code = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studyserver.settings", DATABASE_PREPARE_THRESHOLD=value)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_prepare_threshold_must_be_a_number():
    code = "import django; django.setup()"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="studyserver.settings", DATABASE_PREPARE_THRESHOLD="soon")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "DATABASE_PREPARE_THRESHOLD must be an integer" in result.stderr
