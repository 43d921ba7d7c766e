"""Which errors the tasks retry (studyserver.tasks_retry): run with `task.apply()`, as a worker runs them, with
each retry run at once. A lost race or a database that is away is retried; a statement the database refuses each
time fails the task at once."""

import sqlite3

import pytest
from django.db import InterfaceError

from publishing.tasks import publish_drain, publish_sweep
from study.tasks import analyze_quiz_session, explain_question, extract_document
from studyserver.celery import app
from studyserver.errors import transient_database_error
from studyserver.tasks_retry import TransientRetryTask
from studyserver.testing import postgresql_operational_error, sqlite_operational_error


def failing_first(calls: list, error: BaseException, *, times: int = 1, result=0):
    """A service that raises `error` on its first `times` calls and returns `result` after; `calls` counts them."""

    def service(**kwargs):
        calls.append(kwargs)
        if len(calls) <= times:
            raise error
        return result

    return service


TRANSIENT = {
    "deadlock": postgresql_operational_error("40P01"),
    "serialization failure": postgresql_operational_error("40001"),
    "connection failure": postgresql_operational_error("08006"),
    "statement cancelled": postgresql_operational_error("57014"),
    "lock timeout": postgresql_operational_error("55P03"),
    "too many connections": postgresql_operational_error("53300"),
    "connection lost": InterfaceError("connection already closed"),
    "SQLite busy": sqlite_operational_error("database is locked", sqlite3.SQLITE_BUSY),
}
DETERMINISTIC = {
    "program limit exceeded": postgresql_operational_error("54000"),
    "statement too complex": postgresql_operational_error("54001"),
    "object in use": postgresql_operational_error("55006"),
    "SQLite no such table": sqlite_operational_error("no such table: study_document", sqlite3.SQLITE_ERROR),
}


@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_lost_race_or_a_database_away_is_transient(error):
    assert transient_database_error(error)


@pytest.mark.parametrize("error", DETERMINISTIC.values(), ids=DETERMINISTIC.keys())
def test_a_statement_the_database_refuses_each_time_is_not(error):
    assert not transient_database_error(error)


@pytest.mark.django_db
@pytest.mark.parametrize("task", [publish_drain, publish_sweep])
def test_a_connection_lost_under_a_drain_is_retried(task, monkeypatch):
    calls: list = []
    monkeypatch.setattr("publishing.services.publish_drain",
                        failing_first(calls, InterfaceError("connection already closed")))
    result = task.apply()
    assert (result.state, result.result, len(calls)) == ("SUCCESS", 0, 2)


@pytest.mark.django_db
@pytest.mark.parametrize("error", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_study_task_retries_a_transient_database_error(error, monkeypatch):
    calls: list = []
    monkeypatch.setattr("study.services.analysis.quiz_session_analyze", failing_first(calls, error, result="done"))
    result = analyze_quiz_session.apply(args=(7,))
    assert (result.state, result.result, len(calls)) == ("SUCCESS", "done", 2)


@pytest.mark.django_db
@pytest.mark.parametrize("error", DETERMINISTIC.values(), ids=DETERMINISTIC.keys())
def test_a_study_task_fails_at_once_on_a_database_error_no_retry_cures(error, monkeypatch, caplog):
    calls: list = []
    monkeypatch.setattr("study.services.analysis.quiz_session_analyze",
                        failing_first(calls, error, times=99, result="done"))
    result = analyze_quiz_session.apply(args=(7,))
    assert (result.state, result.result, len(calls)) == ("FAILURE", error, 1)  # was: six runs, five of them retries
    assert "raised unexpected: OperationalError" in caplog.text  # the task's failure, as Celery logs one


@pytest.mark.django_db
def test_a_study_task_gives_up_on_a_transient_error_after_its_retries(monkeypatch):
    calls: list = []
    error = postgresql_operational_error("08006")
    monkeypatch.setattr("study.services.analysis.quiz_session_analyze", failing_first(calls, error, times=99))
    result = analyze_quiz_session.apply(args=(7,))
    assert (result.state, result.result, len(calls)) == ("FAILURE", error, 1 + analyze_quiz_session.max_retries)


@pytest.mark.django_db
@pytest.mark.parametrize(("error", "state", "runs"), [
    (TRANSIENT["deadlock"], "SUCCESS", 2),
    (DETERMINISTIC["program limit exceeded"], "FAILURE", 1),
], ids=["deadlock", "program limit exceeded"])
def test_the_publish_tasks_follow_the_same_rule(error, state, runs, monkeypatch):
    calls: list = []
    monkeypatch.setattr("publishing.services.publish_drain", failing_first(calls, error, times=1 if runs == 2 else 99))
    result = publish_drain.apply()
    assert (result.state, len(calls)) == (state, runs)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("sqlstate", "state"), [("40P01", "SUCCESS"), ("57P01", "SUCCESS"), ("54000", "FAILURE")])
def test_real_database_errors_under_a_drain(sqlstate, state):
    """No mock: the drain's first read of the outbox fails inside PostgreSQL with that SQLSTATE, and only that one
    (its retry would go through): a deadlock or a shutdown is retried, a program limit fails the task."""
    from studyserver.testing import failing_statement

    with failing_statement('FROM "publishing_publishoutbox"', errcode=sqlstate):
        result = publish_drain.apply()
    assert result.state == state, result.result


def test_every_task_of_the_project_is_a_transient_retry_task():
    """A task whose own `base` forgets TransientRetryTask would retry every OperationalError again."""
    app.loader.import_default_modules()
    ours = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert {extract_document.name, explain_question.name, publish_drain.name} <= set(ours)
    assert [name for name, task in ours.items() if not isinstance(task, TransientRetryTask)] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "error", [ConnectionError("explainer refused"), TimeoutError("storage timed out")], ids=["network error", "timeout"]
)
def test_a_study_task_retries_a_network_error_or_a_timeout(error, monkeypatch):
    """An explainer or a file store that is away (ExplainerDown and StorageUnavailable are ConnectionErrors) or
    slow: the task runs again, as for a database that is away."""
    calls: list = []
    monkeypatch.setattr("study.services.analysis.quiz_session_analyze", failing_first(calls, error, result="done"))
    result = analyze_quiz_session.apply(args=(7,))
    assert (result.state, result.result, len(calls)) == ("SUCCESS", "done", 2)
