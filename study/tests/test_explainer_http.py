"""The OpenAI-compatible HTTP explainer against a real local HTTP server: retries, backoff, fallback, and one call
at a time for a question (its claim in the shared cache)."""

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from study.explain.http import endpoint_url
from study.models import MemoCard, QuestionExplanation
from study.services.explanations import question_explain
from study.tests.factories import DocumentFactory, QuestionFactory, TopicDocumentFactory


class FakeLLM:
    """Answers POST /v1/chat/completions with the queued (status, body) pairs, or (status, body, headers); the last
    one repeats. `before_answer` runs before each answer (in the server's thread)."""

    def __init__(self, responses: list[tuple[int, object]], before_answer: Callable[[], object] | None = None,
                 content_type: str = "application/json") -> None:
        self.responses = list(responses)
        self.before_answer = before_answer
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "at": time.monotonic(),
                                      "body": json.loads(self.rfile.read(length))})
                if fake.before_answer is not None:
                    fake.before_answer()
                status, body, *extra = fake.responses.pop(0) if len(fake.responses) > 1 else fake.responses[0]
                if isinstance(body, bytes):
                    raw = body
                else:
                    raw = body.encode() if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeLLM":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(text: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


@pytest.fixture
def question(user):
    q = QuestionFactory(
        study_topic__user=user, subject="가스일반", question_text="LNG의 주성분은 무엇인가?",
        choices=["메탄", "에탄", "프로판"], correct_choice=1,
    )
    doc = DocumentFactory(user=user, title="가스 노트", extract_status="done",
                          extracted_text="LNG의 주성분은 메탄이며 영하 162도에서 액화된다.")
    TopicDocumentFactory(topic=q.study_topic, document=doc)
    return q


@pytest.fixture
def llm_settings(settings):
    settings.EXPLAINER_API_KEY = "sk-test"
    settings.EXPLAINER_MODEL = "tiny-model"
    settings.EXPLAINER_TIMEOUT_SECONDS = 5
    settings.EXPLAINER_MAX_ATTEMPTS = 3
    settings.EXPLAINER_RETRY_BACKOFF_MS = 1
    return settings


def test_endpoint_url_accepts_base_or_full_endpoint():
    assert endpoint_url("http://h/v1/") == "http://h/v1/chat/completions"
    assert endpoint_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


@pytest.mark.django_db
def test_llm_explanation_with_prompt_from_question_choices_and_passages(question, llm_settings):
    with FakeLLM([(200, completion("메탄이 LNG의 약 90%를 차지합니다."))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "created"
    explanation = QuestionExplanation.objects.get(question=question)
    assert (explanation.backend, explanation.text) == ("llm", "메탄이 LNG의 약 90%를 차지합니다.")
    assert explanation.passages[0]["snippet"] == "LNG의 주성분은 메탄이며 영하 162도에서 액화된다."
    [request] = llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"]["model"] == "tiny-model"
    prompt = request["body"]["messages"][-1]["content"]
    for part in ("LNG의 주성분은 무엇인가?", "1. 메탄", "3. 프로판", "Correct answer: 1. 메탄",
                 "(가스 노트) LNG의 주성분은 메탄이며"):
        assert part in prompt
    assert MemoCard.objects.filter(source_question=question, needs_review=True).count() == 2


@pytest.mark.django_db
def test_fails_once_then_succeeds(question, llm_settings):
    with FakeLLM([(503, {"error": "overloaded"}), (200, completion("두 번째에 성공"))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url + "/chat/completions"
        assert question_explain(question_id=question.id) == "created"
    assert len(llm.requests) == 2
    explanation = QuestionExplanation.objects.get(question=question)
    assert (explanation.backend, explanation.text) == ("llm", "두 번째에 성공")


@pytest.mark.django_db
def test_keeps_failing_falls_back_to_extractive_after_all_attempts(question, llm_settings):
    with FakeLLM([(500, {"error": "down"})]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "created"
    assert len(llm.requests) == 3
    explanation = QuestionExplanation.objects.get(question=question)
    assert explanation.backend == "extractive"
    assert explanation.text.startswith("정답: 1번 메탄")
    assert MemoCard.objects.filter(source_question=question).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body", "requests_made"),
    [
        (400, {"error": "bad request"}, 1),  # a client error is not retried
        (200, "not json", 3),  # a broken answer is retried like an outage
        (200, {"choices": []}, 3),
        (200, completion("   "), 3),
        # not UTF-8 (JSON must be): stored as replacement characters for good
        (200, b'{"choices": [{"message": {"content": "' + "정답은 메탄".encode("cp949") + b'"}}]}', 3),
        (200, '{"choices": ' + "[" * 100_000 + "]" * 100_000 + "}", 3),  # RecursionError: the task failed
        (200, completion("가" * 20_001), 3),  # longer than the API takes an explanation
        (200, completion("a" * 300_000), 3),  # megabytes went into the explanation and every feed page with it
    ],
    ids=["client-error", "not-json", "no-choices", "blank", "not-utf-8", "nested-deep", "too-long", "too-big"],
)
def test_bad_answers_fall_back(question, llm_settings, status, body, requests_made):
    with FakeLLM([(status, body)]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "created"
    assert len(llm.requests) == requests_made
    assert QuestionExplanation.objects.get(question=question).backend == "extractive"


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refused_request_falls_back_at_once_even_with_task_retries_left(question, llm_settings, status, caplog):
    """A wrong key, model or URL: the task retried it five times over minutes, changing nothing but the wait."""
    with FakeLLM([(status, {"error": "no"})]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id, fall_back=False) == "created"
    assert len(llm.requests) == 1
    assert QuestionExplanation.objects.get(question=question).backend == "extractive"
    assert f"refused the request: HTTP {status}" in caplog.text and "check EXPLAINER_URL" in caplog.text


@pytest.mark.django_db
def test_a_429_is_retried_no_sooner_than_its_retry_after_asks(question, llm_settings):
    llm_settings.EXPLAINER_RETRY_BACKOFF_MS = 600  # this run waits 0.6 + 1.2 s at most between its 3 attempts
    with FakeLLM([(429, {"error": "slow down"}, {"Retry-After": "1"}), (200, completion("기다린 뒤 성공"))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id, fall_back=False) == "created"
    first, second = llm.requests
    assert second["at"] - first["at"] >= 1.0  # not the 0.6 s of its own backoff
    assert QuestionExplanation.objects.get(question=question).text == "기다린 뒤 성공"


@pytest.mark.django_db
def test_a_retry_after_longer_than_the_run_waits_leaves_the_retry_to_the_task(question, llm_settings):
    from study.services.explanations import ExplainerDown

    with FakeLLM([(503, {"error": "loading"}, {"Retry-After": "120"})]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        with pytest.raises(ExplainerDown, match="Retry-After 120 s"):
            question_explain(question_id=question.id, fall_back=False)
        assert len(llm.requests) == 1  # (not the three attempts hammering a server that asked for two minutes)
        assert question_explain(question_id=question.id) == "created"  # the task's last try falls back
    assert QuestionExplanation.objects.get(question=question).backend == "extractive"


def test_retry_after_is_read_as_seconds_or_an_http_date():
    from email.utils import formatdate

    from study.explain.http import _retry_after_seconds

    def answer(value: str) -> requests.Response:
        response = requests.Response()
        response.headers["Retry-After"] = value
        return response

    assert _retry_after_seconds(answer("7")) == 7.0
    assert 25 < _retry_after_seconds(answer(formatdate(time.time() + 30, usegmt=True))) <= 30
    assert _retry_after_seconds(answer(formatdate(time.time() - 30, usegmt=True))) == 0.0
    assert _retry_after_seconds(answer("soon")) is None
    assert _retry_after_seconds(requests.Response()) is None


@pytest.mark.django_db
def test_an_answer_is_read_as_utf_8_whatever_its_content_type_says(question, llm_settings):
    """JSON sent as text/plain (no charset): requests read it as Latin-1, and stored "ì\xa0\x95ë\x8bµ…"."""
    with FakeLLM([(200, completion("정답은 메탄입니다."))], content_type="text/plain") as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "created"
    explanation = QuestionExplanation.objects.get(question=question)
    assert (explanation.backend, explanation.text) == ("llm", "정답은 메탄입니다.")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport/v1", "127.0.0.1:11434/v1", "ftp://127.0.0.1/v1"])
def test_a_url_requests_cannot_use_falls_back_without_retrying(question, llm_settings, url, monkeypatch):
    """Startup refuses such an EXPLAINER_URL; one set some other way still gives the extractive explanation."""
    llm_settings.EXPLAINER_URL = url
    posts = []
    real_post = requests.Session.post
    monkeypatch.setattr(requests.Session, "post", lambda *args, **kwargs: posts.append(1) or real_post(*args, **kwargs))
    assert question_explain(question_id=question.id) == "created"
    assert QuestionExplanation.objects.get(question=question).backend == "extractive"
    assert len(posts) == 1  # of EXPLAINER_MAX_ATTEMPTS = 3: another try cannot make the URL usable


@pytest.mark.django_db
def test_unreachable_server_falls_back(question, llm_settings):
    with socket.socket() as bound:  # the port is ours but nobody listens: connection refused
        bound.bind(("127.0.0.1", 0))
        llm_settings.EXPLAINER_URL = f"http://127.0.0.1:{bound.getsockname()[1]}/v1"
        assert question_explain(question_id=question.id) == "created"
    assert QuestionExplanation.objects.get(question=question).backend == "extractive"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_llm_outage_is_retried_by_the_worker_before_the_extractive_fallback(question, llm_settings, redis_worker):
    """The explanation a question gets is its one (backfill_explanations only explains questions without one): a
    few seconds of outage stored the extractive text for good. The task now retries with backoff (SPEC: tasks are
    retried on transient errors), and only its last try falls back."""
    import time

    from study.tasks import explain_question

    llm_settings.EXPLAINER_MAX_ATTEMPTS = 1
    with FakeLLM([(503, {"error": "loading"}), (200, completion("메탄입니다."))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        explain_question.delay(question.id)
        deadline = time.monotonic() + 30
        while not QuestionExplanation.objects.filter(question=question).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(llm.requests) == 2
    assert QuestionExplanation.objects.get(question=question).backend == "llm"


@pytest.mark.django_db
def test_with_retries_left_an_llm_outage_stores_nothing(question, llm_settings):
    from study.services.explanations import ExplainerDown

    llm_settings.EXPLAINER_MAX_ATTEMPTS = 1
    with FakeLLM([(503, {"error": "down"})]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        with pytest.raises(ExplainerDown):
            question_explain(question_id=question.id, fall_back=False)
    assert not QuestionExplanation.objects.filter(question=question).exists()
    assert not MemoCard.objects.filter(source_question=question).exists()


@pytest.mark.django_db
def test_run_eagerly_an_llm_outage_falls_back_at_once(question, llm_settings):
    """No broker (the demo): a retry would run inside the request that sent the task."""
    from study.tasks import explain_question

    llm_settings.EXPLAINER_MAX_ATTEMPTS = 1
    with FakeLLM([(503, {"error": "down"})]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert explain_question.apply(args=[question.id]).get() == "created"
    assert len(llm.requests) == 1
    assert QuestionExplanation.objects.get(question=question).backend == "extractive"


# --- one LLM call at a time for a question: its claim in the shared cache ---------------------------------------


@pytest.fixture
def claim_key(question):
    """The cache key of the question's claim, deleted after the test."""
    from django.core.cache import cache

    from study.services.explanations import _claim_key

    key = _claim_key(question.id)
    yield key
    cache.delete(key)


@pytest.fixture
def shared_cache():
    """Runs in other threads (or a worker) share the claims through Redis (REDIS_URL), as the processes do."""
    from studyserver.caches import cache_is_shared

    if not cache_is_shared():
        pytest.skip("needs the shared cache (REDIS_URL)")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_call_the_llm_once(question, llm_settings, claim_key, shared_cache):
    """Two deliveries of one question at once (a finalize's fan-out and backfill_explanations, a redelivery): the
    OneToOne constraint kept one explanation, but each run called (and paid) the LLM. The LLM answers the first
    request only once a run has finished without calling it (or after 3 s, when both called it: within the read
    timeout)."""
    from studyserver.testing import run_concurrently

    finished = threading.Event()

    def explain() -> str:
        try:
            return question_explain(question_id=question.id, fall_back=False)
        finally:
            finished.set()

    with FakeLLM([(200, completion("메탄입니다."))], before_answer=lambda: finished.wait(3)) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        results = run_concurrently(explain, explain)
    assert len(llm.requests) == 1
    assert sorted(results) == ["claimed", "created"]
    assert QuestionExplanation.objects.get(question=question).backend == "llm"
    assert MemoCard.objects.filter(source_question=question).count() == 2


@pytest.mark.django_db
def test_a_run_that_finds_the_claim_held_neither_calls_the_llm_nor_falls_back(question, llm_settings, claim_key):
    """Not even its last try (fall_back): the run holding the claim writes the explanation."""
    from django.core.cache import cache

    from study.tasks import explain_question

    cache.set(claim_key, ("another run", time.time() + 60), timeout=60)
    with FakeLLM([(200, completion("메탄입니다."))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "claimed"
        result = explain_question.apply(args=(question.id,))  # eager (the demo): no retry, no fallback
    assert (result.state, result.result) == ("SUCCESS", "claimed")
    assert llm.requests == []
    assert not QuestionExplanation.objects.filter(question=question).exists()
    assert cache.get(claim_key)[0] == "another run"  # not ours to let go


@pytest.mark.django_db
def test_the_claim_is_let_go_after_the_write(question, llm_settings, claim_key):
    from django.core.cache import cache

    with FakeLLM([(200, completion("메탄입니다."))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "created"
    assert cache.get(claim_key) is None


@pytest.mark.django_db
def test_the_claim_is_let_go_when_the_llm_is_down(question, llm_settings, claim_key):
    """ExplainerDown: the task's retry (or another delivery) may call the LLM again."""
    from django.core.cache import cache

    from study.services.explanations import ExplainerDown

    llm_settings.EXPLAINER_MAX_ATTEMPTS = 1
    with FakeLLM([(503, {"error": "down"})]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        with pytest.raises(ExplainerDown):
            question_explain(question_id=question.id, fall_back=False)
    assert cache.get(claim_key) is None


@pytest.mark.django_db
def test_with_the_cache_unreachable_the_run_goes_on_unclaimed(question, llm_settings, caplog):
    """As the throttles do (cache_breaker): an explanation is not held up by a cache that is down."""
    with socket.socket() as bound:  # the port is ours but nobody listens: connection refused
        bound.bind(("127.0.0.1", 0))
        llm_settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                           "LOCATION": f"redis://127.0.0.1:{bound.getsockname()[1]}/0"}}
        with FakeLLM([(200, completion("메탄입니다."))]) as llm:
            llm_settings.EXPLAINER_URL = llm.base_url
            assert question_explain(question_id=question.id) == "created"
    assert len(llm.requests) == 1
    assert QuestionExplanation.objects.get(question=question).backend == "llm"
    assert f"explanation claim of question {question.id} not applied: the cache is unreachable" in caplog.text


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_on_a_worker_a_claim_left_by_a_dead_run_is_waited_out_then_the_question_explained(
        question, llm_settings, claim_key, shared_cache, redis_worker, monkeypatch):
    """A run found the claim held and was retried a fixed 45 s later, five times: a claim left by a run whose worker
    died (never let go; it lasts the task's hard time limit, 243 s) outlasted them, and the last try answered
    "claimed" with nothing left to explain the question. The retry now comes once the claim has ended."""
    from celery.signals import task_retry
    from django.core.cache import cache

    from study.tasks import explain_question
    from studyserver.testing import wait_for

    monkeypatch.setattr("study.tasks.EXPLAIN_CLAIMED_RETRY_SECONDS", 1)
    lasts = 8  # seconds; five 1-second retries end well before it
    cache.set(claim_key, ("a-dead-run", time.time() + lasts), timeout=lasts)
    retries: list[float] = []

    def on_retry(sender, **kwargs) -> None:
        if sender.name == explain_question.name:
            retries.append(time.monotonic())

    task_retry.connect(on_retry, weak=False)
    try:
        with FakeLLM([(200, completion("메탄입니다."))]) as llm:
            llm_settings.EXPLAINER_URL = llm.base_url
            explain_question.delay(question.id)
            assert wait_for(lambda: QuestionExplanation.objects.filter(question=question).exists(), timeout=40)
    finally:
        task_retry.disconnect(on_retry)
    assert len(retries) == 1
    assert len(llm.requests) == 1
    assert QuestionExplanation.objects.get(question=question).backend == "llm"


@pytest.mark.django_db
def test_a_message_delivered_again_takes_its_own_claim_over(question, llm_settings, claim_key):
    """Its worker died mid-call: the same message (the same task id) comes back while its claim lasts. It found the
    claim held and waited on itself."""
    from django.core.cache import cache

    from study.tasks import explain_question

    cache.set(claim_key, ("the-task-id", time.time() + 60), timeout=60)
    with FakeLLM([(200, completion("메탄입니다."))]) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        result = explain_question.apply(args=(question.id,), task_id="the-task-id")
    assert (result.state, result.result) == ("SUCCESS", "created")
    assert len(llm.requests) == 1
    assert cache.get(claim_key) is None  # let go after the write


@pytest.mark.django_db
def test_the_claim_is_let_go_even_while_the_cache_breaker_skips_the_cache(question, llm_settings, claim_key,
                                                                         monkeypatch):
    """Another cache call of the process failed during the LLM call (the breaker opened): the release was skipped
    too, and the claim held off every other run until it ended."""
    from django.core.cache import cache

    from studyserver.caches import cache_breaker

    def llm_answers_while_the_breaker_opens() -> None:
        cache_breaker.down_until = time.monotonic() + 60

    with FakeLLM([(200, completion("메탄입니다."))], before_answer=llm_answers_while_the_breaker_opens) as llm:
        llm_settings.EXPLAINER_URL = llm.base_url
        assert question_explain(question_id=question.id) == "created"
    assert cache.get(claim_key) is None
