"""`make demo` on the embedded defaults: SQLite migrations, the admin user and an idempotent demo seed."""

import os
import sqlite3
import subprocess
import sys

from django.conf import settings


def manage(*args: str, env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing logged at WARNING or above (LOG_LEVEL=WARNING below) but the 4xx answers the test asks for: e.g.
    # not kombu's "No hostname was supplied", which every eager send printed while the eager broker URL had no host.
    noise = [line for line in result.stderr.splitlines() if line.strip() and " django.request " not in line]
    assert not noise, result.stderr
    return result.stdout


def test_demo_seeds_sqlite_with_eager_tasks_and_is_idempotent(tmp_path):
    database = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"}}
    env.update(DEBUG="true", DATABASE_URL=f"sqlite:///{database}", MEDIA_ROOT=str(tmp_path / "media"),
               DEMO_ADMIN_USER="admin", DEMO_ADMIN_PASSWORD="admin-demo", LOG_LEVEL="WARNING")

    manage("migrate", "--noinput", env=env)
    assert "admin-demo" in manage("ensure_admin", env=env)
    first = manage("seed_demo", env=env)
    second = manage("seed_demo", env=env)

    assert "60 questions" in first
    assert "already present" in second
    with sqlite3.connect(database) as db:
        (questions,) = db.execute("SELECT count(*) FROM study_question").fetchone()
        (subjects,) = db.execute("SELECT count(DISTINCT subject) FROM study_question").fetchone()
        (pending_with_document_evidence,) = db.execute(
            "SELECT count(DISTINCT c.id) FROM study_memocard c JOIN study_cardevidence e ON e.card_id = c.id "
            "WHERE c.needs_review AND c.deleted_at IS NULL AND e.source_type = 'document'"
        ).fetchone()
        (done_documents,) = db.execute("SELECT count(*) FROM study_document WHERE extract_status = 'done'").fetchone()
        (language_sessions,) = db.execute(
            "SELECT count(*) FROM study_studysession WHERE study_type = 'language' AND metadata LIKE '%kanji%'"
        ).fetchone()
        (progress,) = db.execute(
            "SELECT count(*) FROM study_questionprogress WHERE pattern_state IS NOT NULL"
        ).fetchone()
        published = dict(db.execute(
            "SELECT kind, count(*) FROM publishing_published WHERE NOT deleted GROUP BY kind"
        ).fetchall())
        (outbox,) = db.execute("SELECT count(*) FROM publishing_publishoutbox").fetchone()
        (approved_cards,) = db.execute(
            "SELECT count(*) FROM study_memocard WHERE NOT needs_review AND deleted_at IS NULL"
        ).fetchone()
    assert questions == 60 and subjects >= 3
    # The drain's SQLite path published every change eagerly after commit.
    assert outbox == 0
    assert published["study_topic"] == 2 and published["study_question"] == 60
    assert published["study_card"] == approved_cards
    assert pending_with_document_evidence > 0  # machine-made cards wait in the review queue, with evidence
    assert done_documents >= 3
    assert language_sessions >= 1
    assert progress > 0

    # The hot endpoints answer through their Python/ORM twins on SQLite (no PostgreSQL fast path there).
    smoke = manage("shell", "-c", HOT_ENDPOINTS_SMOKE,
                   env={**env, "VIEWER_SYNC_TOKEN": "demo-viewer-token", "ALLOWED_HOSTS": "testserver"})
    figures = dict(line.split("=", 1) for line in smoke.split() if "=" in line)
    assert int(figures["due"]) > 0 and int(figures["groups"]) > 0 and int(figures["sessions"]) >= 1
    assert int(figures["feed"]) > 0 and figures["rated"] == "200"
    assert figures["duplicates"] == "409:duplicate_card,409:duplicate_card"
    assert int(figures["gets"]) >= 10 and figures["get_failures"] == "none"


HOT_ENDPOINTS_SMOKE = """
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from study.models import MemoCard
from studyserver.sqljson import fast_paths_supported
assert not fast_paths_supported()
user = get_user_model().objects.get(username="admin")
client = Client(HTTP_AUTHORIZATION="Token " + Token.objects.get_or_create(user=user)[0].key)
viewer = Client(HTTP_AUTHORIZATION="Bearer demo-viewer-token")
def ok(response):
    assert response.status_code == 200, response.content[:300]
    return response.json()
due = ok(client.get("/api/study-cards/due"))
groups = ok(client.get("/api/study-cards?needs_review=true"))
sessions = ok(client.get("/api/study-sessions?limit=5&order=next_review_at"))
feed = ok(viewer.get("/publish/feed?limit=100"))
card = MemoCard.objects.filter(user=user, needs_review=False, deleted_at__isnull=True).first()
rated = client.post(f"/api/study-cards/{card.id}/rate", {"outcome": "correct"}, content_type="application/json")
# A duplicate card is recognised from SQLite's constraint message too (409 duplicate_card, not a generic 409).
made = [client.post("/api/study-cards", {"format": "qa", "cue": "q", "fact": "demo duplicate"},
                    content_type="application/json") for _ in range(2)]
other = client.post("/api/study-cards", {"format": "qa", "cue": "q", "fact": "another"},
                    content_type="application/json")
edit = client.patch(f"/api/study-cards/{other.json()['id']}", {"fact": "demo duplicate"},
                    content_type="application/json")
duplicates = ",".join(f"{r.status_code}:{r.json().get('error_code', '')}" for r in (made[1], edit))
print(f"due={len(due)} groups={len(groups)} sessions={sessions['count']} feed={len(feed['items'])} "
      f"rated={rated.status_code} duplicates={duplicates}")
# Every GET of the API without path parameters answers on SQLite too (no 5xx).
from drf_spectacular.generators import SchemaGenerator
schema = SchemaGenerator().get_schema(request=None, public=True)
failed, tried = [], 0
for path, operations in schema["paths"].items():
    if "get" in operations and "{" not in path:
        tried += 1
        response = (viewer if path.startswith("/publish") else client).get(path)
        if response.status_code >= 500 or response.status_code in (404, 405):
            failed.append(f"{path}:{response.status_code}")
print(f"gets={tried} get_failures=" + (",".join(failed) or "none"))
"""
