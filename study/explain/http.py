"""An OpenAI-compatible chat-completions explainer (used when settings.EXPLAINER_URL is set).

EXPLAINER_URL is the API base (…/v1) or the full …/chat/completions endpoint. Connection
errors, timeouts, 429, 5xx and garbled answers (not UTF-8 JSON of a chat completion, an explanation longer than
the API takes one) are retried EXPLAINER_MAX_ATTEMPTS times with exponential backoff (EXPLAINER_RETRY_BACKOFF_MS,
doubled each time; longer when the server's Retry-After asks for it); then ExplainerUnavailable is raised. Other
client errors (a wrong key, model or URL) and unusable URLs raise ExplainerRefused at once. A Retry-After longer
than the backoff this run has left ends the run too: the task retries later, as the server asked.
"""

import json
import logging
import time
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings

from .base import Draft, ExplainerRefused, ExplainerUnavailable, Passage, QuestionFacts

logger = logging.getLogger(__name__)

BACKEND = "llm"
CONNECT_TIMEOUT_MAX_SECONDS = 10
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_EXPLANATION_CHARS = 20_000  # as long as an explanation the API takes
MAX_ANSWER_BYTES = 256 * 1024  # such an explanation in UTF-8 (three bytes a Hangul syllable), in its JSON
SYSTEM_PROMPT = (
    "You are a tutor for Korean certification exams and language tests. Explain in Korean, in at most "
    "8 sentences, why the correct answer is right and why the learner's likely mistakes are wrong. "
    "Use the reference passages when they help; do not invent facts that contradict them."
)


def endpoint_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else f"{base}/chat/completions"


def build_messages(facts: QuestionFacts, passages: list[Passage]) -> list[dict]:
    choices = "\n".join(f"{i}. {choice}" for i, choice in enumerate(facts.choices, start=1))
    references = "\n".join(f"[{i}] ({p.title}) {p.snippet}" for i, p in enumerate(passages, start=1)) or "(none)"
    user = (
        f"Subject: {facts.subject}\n"
        f"Question: {facts.question_text}\n"
        f"Choices:\n{choices}\n"
        f"Correct answer: {facts.correct_choice}. {facts.answer_text}\n"
        + (f"Official explanation: {facts.explanation}\n" if facts.explanation else "")
        + f"Reference passages:\n{references}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _body(response: requests.Response) -> bytes:
    """The answer's bytes, read up to MAX_ANSWER_BYTES: a server sending megabytes filled the question's explanation
    (and every feed page holding it) with them."""
    body = bytearray()
    for chunk in response.iter_content(64 * 1024):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise ExplainerUnavailable(f"an answer of more than {MAX_ANSWER_BYTES} bytes")
    return bytes(body)


def _content(body: bytes) -> str:
    """The explanation in a chat completion. JSON is UTF-8 whatever the answer's Content-Type says: other bytes were
    read as Latin-1 (or kept as replacement characters) and stored as the explanation for good."""
    try:
        text = json.loads(body.decode("utf-8-sig"))["choices"][0]["message"]["content"]
    except UnicodeDecodeError as exc:
        raise ExplainerUnavailable(f"an answer that is not UTF-8: {exc}") from exc
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:  # (RecursionError: nested deep)
        raise ExplainerUnavailable(f"unexpected response shape: {type(exc).__name__}") from exc
    if not isinstance(text, str) or not text.strip():
        raise ExplainerUnavailable("empty explanation in the response")
    if len(text := text.strip()) > MAX_EXPLANATION_CHARS:
        raise ExplainerUnavailable(f"an explanation of {len(text)} characters, over {MAX_EXPLANATION_CHARS}")
    return text


def _connect_timeout(timeout: float) -> float:
    return min(timeout, CONNECT_TIMEOUT_MAX_SECONDS)


def http_explain_max_seconds() -> float:
    """How long http_explain takes with the current settings when every attempt times out (connecting, then
    waiting for the answer), with the backoff sleeps between attempts: what the explain task must allow.

    (The read timeout bounds each wait for data, not the whole answer: a server trickling bytes can take longer;
    the task's soft time limit ends that.)
    """
    attempts = max(1, settings.EXPLAINER_MAX_ATTEMPTS)
    timeout = settings.EXPLAINER_TIMEOUT_SECONDS
    sleeps = settings.EXPLAINER_RETRY_BACKOFF_MS / 1000 * (2 ** (attempts - 1) - 1)  # d + 2d + … between attempts
    return attempts * (_connect_timeout(timeout) + timeout) + sleeps


def _retry_after_seconds(response: requests.Response) -> float | None:
    """The wait a 429 or 503 asks for in its Retry-After (seconds, or an HTTP date); None without a readable one."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def http_explain(facts: QuestionFacts, passages: list[Passage]) -> Draft:
    url = endpoint_url(settings.EXPLAINER_URL)
    headers = {"Content-Type": "application/json"}
    if settings.EXPLAINER_API_KEY:
        headers["Authorization"] = f"Bearer {settings.EXPLAINER_API_KEY}"
    body = {"model": settings.EXPLAINER_MODEL, "messages": build_messages(facts, passages), "temperature": 0.2}
    attempts = max(1, settings.EXPLAINER_MAX_ATTEMPTS)
    delay = settings.EXPLAINER_RETRY_BACKOFF_MS / 1000
    timeout = settings.EXPLAINER_TIMEOUT_SECONDS
    sleeps_left = delay * (2 ** (attempts - 1) - 1)  # the backoff http_explain_max_seconds allows this run
    last_error = ""
    with requests.Session() as session:
        for attempt in range(1, attempts + 1):
            wait = delay
            try:
                with session.post(url, json=body, headers=headers, timeout=(_connect_timeout(timeout), timeout),
                                  stream=True) as response:
                    if response.ok:
                        return Draft(text=_content(_body(response)), backend=BACKEND)
                    status, asked = response.status_code, _retry_after_seconds(response)
            except requests.RequestException as exc:  # unreachable, timed out, or a URL requests cannot use
                last_error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema
                              | requests.exceptions.InvalidSchema):
                    raise ExplainerRefused(f"explainer at {url} failed: {last_error}") from exc  # no retry helps
            except ExplainerUnavailable as exc:  # a garbled answer is worth another try
                last_error = str(exc)
            else:
                last_error = f"HTTP {status}"
                if status not in RETRY_STATUSES:
                    raise ExplainerRefused(f"explainer at {url} refused the request: {last_error}")
                if asked is not None and attempt < attempts:
                    if asked > sleeps_left:  # the task retries later, as the server asked
                        raise ExplainerUnavailable(f"explainer at {url} failed: {last_error}, Retry-After "
                                                   f"{asked:g} s (longer than this run waits)")
                    wait = max(wait, asked)
            logger.warning("explainer attempt %d/%d for question %s failed: %s",
                           attempt, attempts, facts.question_id, last_error)
            if attempt < attempts:
                time.sleep(wait)
                sleeps_left -= wait
                delay *= 2
    raise ExplainerUnavailable(f"explainer at {url} failed: {last_error}")
