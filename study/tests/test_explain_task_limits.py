"""explain_question's time limits leave the HTTP explainer room for all its attempts, whatever the settings."""

import pytest
import requests

from study.explain import ExplainerUnavailable, QuestionFacts
from study.explain.http import http_explain
from study.tasks import explain_question

FACTS = QuestionFacts(question_id=1, topic_id=None, user_id=1, subject="가스안전관리", question_text="LNG?",
                      choices=("메탄", "에탄"), correct_choice=1, explanation="")
SLACK = 30  # at least this much of the soft limit is left for retrieval, the fallback and the writes


def seconds_when_every_attempt_times_out(monkeypatch) -> float:
    """Run http_explain on a fake clock against a server that never answers: each call waits out its connect
    and read timeouts, each backoff sleeps."""
    clock = [0.0]

    def post(self, url, *, timeout, **kwargs):
        clock[0] += timeout[0] + timeout[1]
        raise requests.Timeout("no answer")

    monkeypatch.setattr(requests.Session, "post", post)
    monkeypatch.setattr("study.explain.http.time.sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    with pytest.raises(ExplainerUnavailable):
        http_explain(FACTS, [])
    return clock[0]


@pytest.mark.parametrize(
    ("timeout", "attempts", "backoff_ms"),
    [(30, 3, 1000), (60, 3, 1000), (120, 3, 1000), (60, 5, 2000), (5, 1, 0), (300, 4, 30_000)],
)
def test_soft_limit_outlasts_the_explainers_retries(settings, monkeypatch, timeout, attempts, backoff_ms):
    settings.EXPLAINER_URL = "http://127.0.0.1:9/v1"
    settings.EXPLAINER_TIMEOUT_SECONDS = timeout
    settings.EXPLAINER_MAX_ATTEMPTS = attempts
    settings.EXPLAINER_RETRY_BACKOFF_MS = backoff_ms
    worst_case = seconds_when_every_attempt_times_out(monkeypatch)
    assert explain_question.soft_time_limit >= worst_case + SLACK
    assert explain_question.time_limit > explain_question.soft_time_limit


def test_defaults_keep_about_the_old_limits(settings):
    # 30 s × 3 attempts: 183 s soft / 243 s hard (was 180 / 240, which 3 × (10 s connect + 30 s read) + 3 s
    # of backoff left 57 s of).
    assert (explain_question.soft_time_limit, explain_question.time_limit) == (183, 243)


def test_the_limits_travel_with_the_message(settings):
    settings.EXPLAINER_TIMEOUT_SECONDS = 90
    explain_question._exec_options = None  # Celery caches the options a message is sent with, per process
    try:
        options = explain_question._get_exec_options()
        assert (options["soft_time_limit"], options["time_limit"]) == (
            explain_question.soft_time_limit, explain_question.time_limit
        )
        assert options["soft_time_limit"] > 3 * (10 + 90)
    finally:
        explain_question._exec_options = None
