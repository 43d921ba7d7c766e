"""In-process benchmarks that need Django: queries and time of finalize and ingest, and pyinstrument profiles.

Run by bench/run.py with the benchmark database in DATABASE_URL:
    python bench/inproc.py finalize            -> RESULT {json}
    python bench/inproc.py profile GET /api/study-cards/due?limit=30 [--n 50] [--viewer] [--body JSON]
    python bench/inproc.py profile POST /ingest/study/attempts --viewer --attempts 100
(`{uuid}` in --body becomes a fresh value per request; --attempts builds an ingest body of that many attempts
on the bench learner's published questions, a fresh client_session_uuid each time.)
"""

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from study.models import Question, StudyTopic  # noqa: E402

COUNTS = (10, 100, 500)
MAX_PER_SUBJECT = 200


def learner_client() -> tuple:
    user = get_user_model().objects.get(username="bench_learner")
    token, _ = Token.objects.get_or_create(user=user)
    return user, Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def viewer_client() -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {settings.VIEWER_SYNC_TOKEN}")


def measure(call) -> tuple:
    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = call()
        ms = (time.perf_counter() - started) * 1000
    return response, len(ctx.captured_queries), round(ms, 1)


def _error(step: str, response) -> str:
    return f"{step} HTTP {response.status_code}: {response.content[:200].decode(errors='replace')}"


def finalize_case(client: Client, topic: StudyTopic, count: int) -> dict:
    """Start a quiz of count + 1 questions, answer `count` of them, then measure POST /finish."""
    target = min(count + 1, MAX_PER_SUBJECT)
    response = client.post("/api/quiz-sessions", {"study_topic_id": topic.pk, "target_per_subject": target},
                           content_type="application/json")
    if response.status_code != 201:
        return {"count": count, "error": _error("start", response)}
    session = response.json()
    if len(session["question_ids"]) != count + 1:
        return {"count": count, "error": f"the quiz holds {len(session['question_ids'])} questions"}
    for i, question_id in enumerate(session["question_ids"][:count]):
        body = {"question_id": question_id, "is_unsure": True} if i % 5 == 4 else {
            "question_id": question_id, "selected_choice": i % 4 + 1}
        answer = client.post(f"/api/quiz-sessions/{session['id']}/attempts", body, content_type="application/json")
        if answer.status_code != 201:
            return {"count": count, "error": _error("attempt", answer)}
    response, queries, ms = measure(lambda: client.post(f"/api/quiz-sessions/{session['id']}/finish",
                                                        content_type="application/json"))
    if response.status_code != 200:
        return {"count": count, "queries": queries, "ms": ms, "error": _error("finish", response)}
    return {"count": count, "queries": queries, "ms": ms}


def finalize_bench() -> dict:
    user, client = learner_client()
    first, repeat = [], []
    for count in COUNTS:
        topic = StudyTopic.objects.create(user=user, name=f"bench finalize {count} {secrets.token_hex(4)}")
        subjects = -(-(count + 1) // MAX_PER_SUBJECT)  # the API caps target_per_subject
        Question.objects.bulk_create(
            Question(user=user, study_topic=topic, subject=f"과목 {i % subjects}",
                     question_text=f"finalize {count} q{i}", choices=["a", "b", "c", "d"], correct_choice=1 + i % 4)
            for i in range(count + 1)
        )
        first.append(finalize_case(client, topic, count))
        repeat.append(finalize_case(client, topic, count))  # progress rows exist now: the update path
    return {"finalize": first, "finalize_repeat": repeat}


def ingest_bench() -> list:
    from publishing.models import Published

    user = get_user_model().objects.get(username="bench_learner")
    topics = list(StudyTopic.objects.filter(user=user).order_by("id").values_list("id", flat=True)[:2])
    question_ids = Question.objects.filter(study_topic_id__in=topics).values_list("id", flat=True)
    pub_ids = list(Published.objects.filter(kind="study_question", deleted=False, source_id__in=question_ids)
                   .order_by("source_id").values_list("pub_id", flat=True))
    if not pub_ids:
        return [{"count": c, "error": "no published questions (backfill_publish missing?)"} for c in COUNTS]
    client, rows = viewer_client(), []
    for count in COUNTS:
        attempts = [{"question_pub_id": pub_ids[i % len(pub_ids)], "selected_choice": i % 4 + 1}
                    for i in range(count)]
        body = {"client_session_uuid": f"bench-inproc-{secrets.token_hex(8)}", "attempts": attempts}
        response, queries, ms = measure(lambda body=body: client.post("/ingest/study/attempts", body,
                                                                      content_type="application/json"))
        row = {"count": count, "queries": queries, "ms": ms}
        if response.status_code != 200:
            row["error"] = _error("ingest", response)
        rows.append(row)
    return rows


def _ingest_body(count: int) -> str:
    """An ingest body of `count` attempts on as many random published questions of the bench learner (each once, as
    far as there are), `{uuid}` to fill."""
    import random

    from publishing.models import Published

    user = get_user_model().objects.get(username="bench_learner")
    question_ids = Question.objects.filter(user=user).values_list("id", flat=True)
    pub_ids = list(Published.objects.filter(kind="study_question", deleted=False, source_id__in=question_ids)
                   .values_list("pub_id", flat=True))
    rng = random.Random(7)
    questions = rng.sample(pub_ids, count) if count <= len(pub_ids) else [rng.choice(pub_ids) for _ in range(count)]
    attempts = [{"question_pub_id": pub_id, "selected_choice": rng.randint(1, 4)} for pub_id in questions]
    return json.dumps({"client_session_uuid": "{uuid}", "attempts": attempts})


def profile(method: str, path: str, n: int, viewer: bool, body: str | None, attempts: int | None = None) -> None:
    from pyinstrument import Profiler

    client = viewer_client() if viewer else learner_client()[1]
    send = getattr(client, method.lower())
    if attempts:
        body = _ingest_body(attempts)
    bodies = [body.replace("{uuid}", f"profile-{secrets.token_hex(8)}") if body else None for _ in range(n + 1)]

    def kwargs(i: int) -> dict:
        return {"data": bodies[i], "content_type": "application/json"} if body else {}

    send(path, **kwargs(n))  # warm-up
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for i in range(n):
        response = send(path, **kwargs(i))
    profiler.stop()
    print(f"last status {response.status_code}")
    slug = "".join(c if c.isalnum() else "_" for c in path)[:60] + (f"_{attempts}" if attempts else "")
    out = ROOT / "bench" / "results" / f"profile-{method.lower()}-{slug}.txt"
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    print(profiler.output_text(unicode=True, color=False))
    print(f"written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("finalize")
    p = sub.add_parser("profile")
    p.add_argument("method")
    p.add_argument("path")
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--viewer", action="store_true")
    p.add_argument("--body")
    p.add_argument("--attempts", type=int, help="an ingest body of this many attempts (POST /ingest/study/attempts)")
    args = parser.parse_args()
    if args.cmd == "finalize":
        result = finalize_bench()
        result["ingest"] = ingest_bench()
        print("RESULT " + json.dumps(result))
    else:
        profile(args.method, args.path, args.n, args.viewer, args.body, args.attempts)


if __name__ == "__main__":
    main()
