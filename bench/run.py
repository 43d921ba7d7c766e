"""Benchmark runner: seeds PostgreSQL, serves the app under gunicorn, loads it with wrk, prints figures.

Every figure comes with a ratio against a floor measured in the same run (see bench/README.md).
Configuration (environment; unset or blank means the default): BENCH_SCALE (1), BENCH_BIG_SCALE (5),
BENCH_QUICK (0/1), BENCH_DURATION (seconds per endpoint), BENCH_ONLY (comma list of hot,backfill,feed,finalize),
BENCH_REUSE (1: keep already seeded databases), BENCH_PG (server URL without a database), BENCH_DB /
BENCH_BIG_DB (database names, dropped and seeded again unless BENCH_REUSE=1), BENCH_REDIS (the app's cache and
broker during the run, flushed at the end), BENCH_SECRET_KEY (the app's SECRET_KEY; a random one per run),
BENCH_ATTEMPTS (100: attempts per ingest request). bench/run.sh runs it with PY (.venv/bin/python).
It takes no arguments. Ctrl-C or SIGTERM stops it, and the gunicorn it started.
"""

import atexit
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from studyserver.env import env_bool, env_int, env_list, env_str  # noqa: E402 - the app's readers: blank = default

BENCH = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
RESULTS = BENCH / "results"
CORES = os.cpu_count() or 1

try:
    QUICK = env_bool("BENCH_QUICK")
    SCALE = env_int("BENCH_SCALE", 1, minimum=1)
    BIG_SCALE = env_int("BENCH_BIG_SCALE", 5, minimum=1)
    DURATION = env_int("BENCH_DURATION", 3 if QUICK else 8, minimum=1)
    ATTEMPTS = env_int("BENCH_ATTEMPTS", 100, minimum=1)
    REUSE = env_bool("BENCH_REUSE")
except ImproperlyConfigured as exc:  # one line naming the variable, as the app's own start
    sys.exit(str(exc))
BENCHMARKS = ["hot", "backfill", "feed", "finalize"]
ONLY = set(env_list("BENCH_ONLY", BENCHMARKS))
if unknown := sorted(ONLY - set(BENCHMARKS)):  # (a typo ran nothing, after dropping and seeding the databases)
    sys.exit(f"BENCH_ONLY names no benchmark {', '.join(unknown)}: it is a comma list of {', '.join(BENCHMARKS)}")
PG = env_str("BENCH_PG", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB_SMALL = env_str("BENCH_DB", "studyserver_bench")
DB_BIG = env_str("BENCH_BIG_DB", "studyserver_bench_big")
REDIS = env_str("BENCH_REDIS", "redis://127.0.0.1:6379/7")
VIEWER_TOKEN = secrets.token_urlsafe(32)
FEED_PAGE = 2000
STATIC_ROOT = tempfile.mkdtemp(prefix="bench-static-")  # whitenoise wants the directory to exist
atexit.register(shutil.rmtree, STATIC_ROOT, ignore_errors=True)
GOALS = {"read": 0.5, "write": 0.3, "feed": 0.3, "backfill": 0.3, "memory_ratio": 1.3}


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def app_env(db: str, **extra: str) -> dict:
    """The production-like environment the app runs with (DEBUG off, real broker, no throttling in the way)."""
    env = dict(os.environ)
    env.update(
        DEBUG="false",
        SECRET_KEY=env_str("BENCH_SECRET_KEY") or secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        DATABASE_URL=f"{PG}/{db}",
        REDIS_URL=REDIS,
        CELERY_BROKER_URL=REDIS,  # tasks are queued (no worker runs, so it does not steal CPU)
        VIEWER_SYNC_TOKEN=VIEWER_TOKEN,
        # Off, as the floor has none: a huge rate would not be "out of the way" (DRF keeps every request's
        # timestamp of the window in the cache entry, so each request would read and write thousands).
        THROTTLE_VIEWER_RATE="off",
        THROTTLE_AUTH_RATE="off",
        LOG_LEVEL="WARNING",
        STATIC_ROOT=STATIC_ROOT,
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def manage(db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=app_env(db), check=check,
                          text=True, capture_output=True)


def has_command(db: str, name: str) -> bool:
    out = manage(db, "help", "--commands").stdout
    return name in out.split()


def db_connect(db: str) -> psycopg.Connection:
    return psycopg.connect(f"{PG}/{db}")


def database_seeded(db: str, scale: int) -> bool:
    try:
        with db_connect(db) as conn:
            count = conn.execute("SELECT count(*) FROM study_question").fetchone()[0]
            return count >= 5000 * scale
    except psycopg.Error:
        return False


def prepare_database(db: str, scale: int) -> None:
    """Drop, create, migrate and seed `db` at `scale` (without the feed: the backfill benchmark fills it)."""
    if REUSE and database_seeded(db, scale):
        log(f"reusing {db} (seeded)")
        return
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    log(f"{db}: migrate")
    manage(db, "migrate", "--noinput", "-v0")
    log(f"{db}: bench_seed --scale {scale}")
    started = time.perf_counter()
    out = manage(db, "bench_seed", "--scale", str(scale), "--no-publish").stdout
    log(f"{db}: seeded in {time.perf_counter() - started:.0f}s — {out.strip().splitlines()[-1]}")


# --- the server and the load generator -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(db: str):
    """gunicorn (sync workers, 2 × cores) on a free loopback port; yields the base URL."""
    port = free_port()
    workers = 2 * CORES
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "studyserver.wsgi:application", "--workers", str(workers), "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", "--graceful-timeout", "5"],
        cwd=ROOT, env=app_env(db), start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not come up")
        log(f"gunicorn up on {base} ({workers} workers, db {db})")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def http(method: str, url: str, auth: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={  # noqa: S310
        "Authorization": auth, "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wrk(base: str, path: str, script: str, auth: str, ids_file: str = "", duration: int = DURATION) -> dict:
    env = dict(os.environ, BENCH_AUTH=auth, BENCH_WRK_DIR=str(BENCH / "wrk"), BENCH_IDS=ids_file,
               BENCH_ATTEMPTS=str(ATTEMPTS))
    cmd = ["wrk", "-t1", f"-c{2 * CORES * 2}", f"-d{duration}s", "--timeout", "20s", "-s",
           str(BENCH / "wrk" / script), f"{base}{path}"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    seconds = data["duration_us"] / 1e6
    errors = data["status_errors"] + data["connect_errors"] + data["read_errors"] + data["timeouts"]
    return {
        "requests": data["requests"], "seconds": round(seconds, 2), "rps": round(data["requests"] / seconds, 1),
        "p50_ms": round(data["p50_us"] / 1000, 2), "p99_ms": round(data["p99_us"] / 1000, 2), "errors": errors,
    }


# --- 1. hot endpoints --------------------------------------------------------------------------


def write_ids(rows: list, name: str) -> str:
    path = Path(tempfile.gettempdir()) / f"bench-{os.getpid()}-{name}.txt"
    path.write_text("\n".join(str(r[0]) for r in rows) + "\n")
    atexit.register(path.unlink, missing_ok=True)
    return str(path)


def fixtures(db: str) -> dict:
    """Token of the learner, approved card ids and published question pub_ids (two topics) for the scripts."""
    with db_connect(db) as conn:
        user_id, token = conn.execute(
            "SELECT u.id, t.key FROM auth_user u JOIN authtoken_token t ON t.user_id = u.id "
            "WHERE u.username = 'bench_learner'").fetchone()
        # The rate benchmark rates cards that are not due (scheduled later or known): a rating keeps them out
        # of the due list, so repeated runs (BENCH_REUSE) leave the due list's due and new halves as seeded.
        cards = conn.execute(
            "SELECT c.id FROM study_memocard c JOIN study_cardprogress p ON p.card_id = c.id AND p.user_id = c.user_id"
            " WHERE c.user_id = %s AND NOT c.needs_review AND c.deleted_at IS NULL"
            " AND (p.due_at IS NULL OR p.due_at > now() + interval '1 hour')",
            [user_id]).fetchall()
        topics = [r[0] for r in conn.execute(
            "SELECT id FROM study_studytopic WHERE user_id = %s ORDER BY id LIMIT 2", [user_id]).fetchall()]
        pub_ids = conn.execute(
            "SELECT p.pub_id FROM publishing_published p JOIN study_question q ON q.id = p.source_id "
            "WHERE p.kind = 'study_question' AND NOT p.deleted AND q.study_topic_id = ANY(%s)", [topics]).fetchall()
    return {"token": token, "cards": write_ids(cards, "cards"), "card_count": len(cards),
            "pub_ids": write_ids(pub_ids, "pubids") if pub_ids else "", "pub_count": len(pub_ids)}


def hot_endpoints(db: str) -> list[dict]:
    fx = fixtures(db)
    user_auth, viewer_auth = f"Token {fx['token']}", f"Bearer {VIEWER_TOKEN}"
    first_card = Path(fx["cards"]).read_text().split()[0]
    ingest_probe = json.dumps({"client_session_uuid": f"probe-{secrets.token_hex(6)}", "attempts": [
        {"question_pub_id": p, "selected_choice": 1} for p in Path(fx["pub_ids"]).read_text().split()[:ATTEMPTS]
    ]}).encode() if fx["pub_ids"] else b"{}"
    cases = [
        # name, kind, method, path, script, auth, ids file, probe body
        ("ping (floor)", "floor", "GET", "/api/ping", "get.lua", user_auth, "", None),
        ("cards due", "read", "GET", "/api/study-cards/due?limit=30", "get.lua", user_auth, "", None),
        ("card rate", "write", "POST", f"/api/study-cards/{first_card}/rate", "rate.lua", user_auth, fx["cards"],
         b'{"outcome": "correct"}'),
        ("sessions list (filtered)", "read", "GET",
         "/api/study-sessions?limit=50&study_type=certification&order=next_review_at", "get.lua", user_auth, "", None),
        ("cards needing review", "read", "GET", "/api/study-cards?needs_review=true", "get.lua", user_auth, "", None),
        ("publish feed", "read", "GET", "/publish/feed?limit=500", "get.lua", viewer_auth, "", None),
        (f"ingest {ATTEMPTS} attempts", "write", "POST", "/ingest/study/attempts", "ingest.lua", viewer_auth,
         fx["pub_ids"], ingest_probe),
    ]
    results = []
    with server(db) as base:
        floor_rps = None
        for name, kind, method, path, script, auth, ids, body in cases:
            started = time.perf_counter()
            status, content = http(method, f"{base}{path}", auth, body)
            probe_seconds = time.perf_counter() - started
            row = {"name": name, "kind": kind, "method": method, "path": path, "probe_status": status}
            if not 200 <= status < 300:
                row["unavailable"] = f"HTTP {status}: {content[:160].decode(errors='replace')}"
                log(f"{name}: skipped, {row['unavailable']}")
                results.append(row)
                continue
            # A slow endpoint gets a longer run so that enough requests complete inside it.
            duration = max(DURATION, min(30, int(probe_seconds * 6) + 1))
            wrk(base, path, script, auth, ids, duration=max(1, min(duration // 3, 3)))  # warm-up
            row.update(wrk(base, path, script, auth, ids, duration=duration))
            if kind == "floor":
                floor_rps = row["rps"]
            log(f"{name}: {row['rps']} req/s p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms errors {row['errors']}")
            results.append(row)
        # The machine's speed drifts during a run: the floor is measured again at the end and the ratios use
        # the mean of both measurements.
        if floor_rps:
            again = wrk(base, "/api/ping", "get.lua", user_auth, "", duration=DURATION)
            log(f"ping (floor, again): {again['rps']} req/s")
            results[0]["rps_at_end"] = again["rps"]
            floor_rps = (floor_rps + again["rps"]) / 2
            results[0]["floor_rps"] = round(floor_rps, 1)
        for row in results:
            if "rps" not in row:
                continue
            row["ratio"] = round(row["rps"] / floor_rps, 3) if floor_rps else None
            row["goal"] = GOALS.get(row["kind"])
            row["pass"] = None if row["goal"] is None or row["ratio"] is None else row["ratio"] >= row["goal"]
    for path in (fx["cards"], fx["pub_ids"]):
        if path:
            Path(path).unlink(missing_ok=True)
    return results


# --- 2. feed sync --------------------------------------------------------------------------------


def feed_sync(db: str) -> dict:
    with db_connect(db) as conn:
        total = conn.execute("SELECT count(*) FROM publishing_published").fetchone()[0]
    if not total:
        return {"unavailable": "the published feed is empty (no backfill_publish)"}
    with server(db) as base:
        status, content = http("GET", f"{base}/publish/feed?limit=1", f"Bearer {VIEWER_TOKEN}")
        if status != 200:
            return {"unavailable": f"HTTP {status}: {content[:160].decode(errors='replace')}"}
        http("GET", f"{base}/publish/feed?limit={FEED_PAGE}", f"Bearer {VIEWER_TOKEN}")  # warm-up
        rows, pages, after, last_seq, ordered = 0, 0, 0, 0, True
        started = time.perf_counter()
        while True:
            status, content = http("GET", f"{base}/publish/feed?after={after}&limit={FEED_PAGE}",
                                   f"Bearer {VIEWER_TOKEN}")
            if status != 200:
                return {"unavailable": f"HTTP {status} at after={after}"}
            page = json.loads(content)
            for item in page["items"]:
                ordered = ordered and item["seq"] > last_seq
                last_seq = item["seq"]
            rows += len(page["items"])
            pages += 1
            after = page["next_after"]
            if not page["has_more"]:
                break
        api_seconds = time.perf_counter() - started

    started = time.perf_counter()
    raw_rows, after = 0, 0
    with db_connect(db) as conn:
        while True:
            batch = conn.execute(
                "SELECT seq, pub_id, kind, deleted, updated_at, payload FROM publishing_published "
                "WHERE seq > %s ORDER BY seq LIMIT %s", [after, FEED_PAGE]).fetchall()
            if not batch:
                break
            items = [{"seq": s, "pub_id": p, "kind": k, "deleted": d, "updated_at": u.isoformat(), "payload": pl}
                     for s, p, k, d, u, pl in batch]
            json.dumps({"items": items, "next_after": batch[-1][0], "has_more": len(batch) == FEED_PAGE},
                       ensure_ascii=False)
            raw_rows += len(batch)
            after = batch[-1][0]
    raw_seconds = time.perf_counter() - started
    api_rate, raw_rate = rows / api_seconds, raw_rows / raw_seconds
    result = {
        "rows": rows, "published_rows": total, "pages": pages, "page_size": FEED_PAGE, "seq_ascending": ordered,
        "seconds": round(api_seconds, 2), "rows_per_s": round(api_rate), "raw_rows_per_s": round(raw_rate),
        "ratio": round(api_rate / raw_rate, 3), "goal": GOALS["feed"],
    }
    result["pass"] = result["ratio"] >= GOALS["feed"] and rows == total and ordered
    log(f"feed sync: {rows} rows in {api_seconds:.1f}s = {api_rate:.0f} rows/s, raw {raw_rate:.0f} rows/s, "
        f"ratio {result['ratio']}")
    return result


# --- 3. backfill ------------------------------------------------------------------------------------


def timed_backfill(db: str) -> dict:
    """backfill_publish --kind all in a child process on an empty feed: rows/s and the child's peak RSS."""
    with db_connect(db) as conn:
        conn.execute("TRUNCATE publishing_published, publishing_publishoutbox")
        cards = conn.execute("SELECT count(*) FROM study_memocard").fetchone()[0]
    started = time.perf_counter()
    backfill = [sys.executable, "manage.py", "backfill_publish", "--kind", "all"]
    command = [sys.executable, str(BENCH / "peak_rss.py"), *backfill]
    proc = subprocess.run(command, cwd=ROOT, env=app_env(db), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    output = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        return {"unavailable": f"backfill_publish failed: {output[-400:]}"}
    peak_kb = int(output.strip().splitlines()[-1].removeprefix("PEAK_RSS_KB "))
    with db_connect(db) as conn:
        rows = conn.execute("SELECT count(*) FROM publishing_published").fetchone()[0]
    result = {"cards": cards, "rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
              "peak_rss_mb": round(peak_kb / 1024, 1)}
    result["raw_rows_per_s"] = raw_upsert_rate(db)
    result["ratio"] = round(result["rows_per_s"] / result["raw_rows_per_s"], 3)
    log(f"backfill on {cards} cards: {rows} rows in {seconds:.1f}s = {result['rows_per_s']} rows/s, "
        f"raw upsert {result['raw_rows_per_s']} rows/s, ratio {result['ratio']}, peak RSS {result['peak_rss_mb']} MB")
    return result


def raw_upsert_rate(db: str) -> int:
    """The floor: psycopg INSERT … ON CONFLICT DO UPDATE of the same rows (payloads and rendered items) into a
    copy of the table."""
    with db_connect(db) as conn:
        rows = conn.execute(
            "SELECT pub_id, kind, source_id, user_id, payload, deleted, item FROM publishing_published ORDER BY seq"
        ).fetchall()
        conn.execute("DROP TABLE IF EXISTS bench_published")
        conn.execute("DROP SEQUENCE IF EXISTS bench_published_seq")
        conn.execute("CREATE TABLE bench_published (LIKE publishing_published INCLUDING ALL)")
        conn.execute("CREATE SEQUENCE bench_published_seq")
        conn.commit()
        sql = ("INSERT INTO bench_published (pub_id, kind, source_id, user_id, payload, deleted, item, seq, "
               "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, nextval('bench_published_seq'), now()) "
               "ON CONFLICT (kind, source_id) DO UPDATE SET payload = EXCLUDED.payload, "
               "deleted = EXCLUDED.deleted, item = EXCLUDED.item, seq = EXCLUDED.seq, updated_at = EXCLUDED.updated_at")
        started = time.perf_counter()
        batch = 1000
        with conn.cursor() as cur:
            for start in range(0, len(rows), batch):
                cur.executemany(sql, [(p, k, s, u, psycopg.types.json.Jsonb(pl) if pl is not None else None, d, i)
                                      for p, k, s, u, pl, d, i in rows[start:start + batch]])
                conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_published")
        conn.execute("DROP SEQUENCE bench_published_seq")
        conn.commit()
    return round(len(rows) / seconds)


# --- 4. finalize and ingest ---------------------------------------------------------------------


def finalize_and_ingest(db: str) -> dict:
    out = subprocess.run([sys.executable, str(BENCH / "inproc.py"), "finalize"], cwd=ROOT, env=app_env(db),
                         capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        return {"unavailable": (out.stdout + out.stderr)[-600:]}
    result = json.loads(line.removeprefix("RESULT "))
    for key, rows in result.items():
        if isinstance(rows, list):
            log(f"{key}: " + ", ".join(f"{r['count']}→{r.get('queries')}q/{r.get('ms')}ms" for r in rows))
    return result


# --- report ------------------------------------------------------------------------------------------


def table(results: dict) -> str:
    lines = ["", f"== Hot endpoints (gunicorn {2 * CORES} workers, wrk {DURATION}s, loopback) ==",
             f"{'endpoint':30} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'÷ floor':>8} {'goal':>5} {'ok':>4}"]
    for r in results.get("hot", []):
        if "unavailable" in r:
            lines.append(f"{r['name']:30} unavailable ({r['unavailable'][:60]})")
            continue
        ok = "" if r.get("pass") is None else ("yes" if r["pass"] else "NO")
        lines.append(f"{r['name']:30} {r['rps']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['ratio']:>8} "
                     f"{r.get('goal') or '':>5} {ok:>4}" + (f"  ({r['errors']} errors)" if r["errors"] else ""))
        if r["kind"] == "floor" and "rps_at_end" in r:
            lines.append(f"{'ping (floor) at the end':30} {r['rps_at_end']:>9}  → the floor is the mean, "
                         f"{r['floor_rps']} req/s")
    feed = results.get("feed_sync")
    if feed:
        lines += ["", f"== Feed sync (whole feed, page {FEED_PAGE}) =="]
        if "unavailable" in feed:
            lines.append(f"unavailable: {feed['unavailable']}")
        else:
            lines.append(f"{feed['rows']} rows: {feed['rows_per_s']} rows/s vs raw psycopg {feed['raw_rows_per_s']} "
                         f"rows/s → ratio {feed['ratio']} (goal ≥ {feed['goal']}) {'ok' if feed['pass'] else 'NO'}")
    backfill = results.get("backfill")
    if backfill:
        lines += ["", "== Backfill (backfill_publish --kind all, empty feed) =="]
        for label, b in backfill.items():
            if not isinstance(b, dict):
                continue
            if "unavailable" in b:
                lines.append(f"{label}: unavailable: {b['unavailable'][:200]}")
            else:
                lines.append(f"{label}: {b['cards']} cards → {b['rows']} rows, {b['rows_per_s']} rows/s vs raw upsert "
                             f"{b['raw_rows_per_s']} rows/s → ratio {b['ratio']}; peak RSS {b['peak_rss_mb']} MB")
        if backfill.get("memory_ratio") is not None:
            lines.append(f"peak memory ratio (large ÷ small): {backfill['memory_ratio']} "
                         f"(goal ≤ {GOALS['memory_ratio']})")
    fin = results.get("finalize_ingest")
    if fin:
        lines += ["", "== Finalize and ingest (in-process, CaptureQueriesContext) =="]
        if "unavailable" in fin:
            lines.append(f"unavailable: {fin['unavailable'][-300:]}")
        for key in ("finalize", "finalize_repeat", "ingest"):
            if isinstance(fin.get(key), list):
                lines.append(f"{key:16} " + "   ".join(
                    f"{r['count']}: {r.get('queries', '?')} queries {r.get('ms', '?')} ms"
                    + (f" [{r['error']}]" if r.get("error") else "") for r in fin[key]))
    return "\n".join(lines)


def main() -> int:
    results: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {"cores": CORES, "python": platform.python_version(), "machine": platform.machine()},
        "config": {"scale": SCALE, "big_scale": None if QUICK else BIG_SCALE, "quick": QUICK, "duration_s": DURATION,
                   "gunicorn_workers": 2 * CORES, "wrk_connections": 4 * CORES},
    }
    prepare_database(DB_SMALL, SCALE)
    with db_connect(DB_SMALL) as conn:
        results["host"]["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    backfill_available = has_command(DB_SMALL, "backfill_publish")
    backfill: dict = {}
    if backfill_available:
        backfill["small"] = timed_backfill(DB_SMALL)  # also fills the feed for the hot endpoints
    else:
        log("backfill_publish is not available: feed, ingest and backfill figures are skipped")
    if "hot" in ONLY:
        results["hot"] = hot_endpoints(DB_SMALL)
    if "finalize" in ONLY:
        results["finalize_ingest"] = finalize_and_ingest(DB_SMALL)
    feed_db = DB_SMALL
    if not QUICK and ({"feed", "backfill"} & ONLY) and backfill_available:
        prepare_database(DB_BIG, BIG_SCALE)
        backfill["large"] = timed_backfill(DB_BIG)
        feed_db = DB_BIG
        small, large = backfill.get("small", {}), backfill["large"]
        if "peak_rss_mb" in small and "peak_rss_mb" in large:
            backfill["memory_ratio"] = round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)
    if backfill:
        # The goal is the 100,000-card run's (issue #8); the 20,000-card run is the memory comparison point
        # (and the only run with BENCH_QUICK).
        judged = backfill.get("large") or backfill.get("small") or {}
        backfill["pass"] = judged.get("ratio") is not None and judged["ratio"] >= GOALS["backfill"] and (
            backfill.get("memory_ratio") is None or backfill["memory_ratio"] <= GOALS["memory_ratio"])
        results["backfill"] = backfill
    if "feed" in ONLY:
        results["feed_sync"] = feed_sync(feed_db)

    redis.Redis.from_url(REDIS).flushdb()  # the task kicks queued while no worker ran
    RESULTS.mkdir(exist_ok=True)
    partial = "" if set(BENCHMARKS) <= ONLY else "-" + "-".join(sorted(ONLY))
    out = RESULTS / f"{dt.datetime.now(dt.UTC).date().isoformat()}{'-quick' if QUICK else ''}{partial}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    print(f"\nfigures written to {out.relative_to(ROOT)}")
    return 0


def _stop(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: the `finally` blocks stop gunicorn


if __name__ == "__main__":
    if set(sys.argv[1:]) & {"-h", "--help"}:
        print(__doc__.strip())
        sys.exit(0)
    if sys.argv[1:]:
        sys.exit(f"bench/run.py takes no arguments (got {' '.join(sys.argv[1:])}); see --help")
    signal.signal(signal.SIGTERM, _stop)
    sys.exit(main())
