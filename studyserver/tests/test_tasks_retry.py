"""Which errors the tasks retry (studyserver.tasks_retry): run with `task.apply()`, as a worker would run them,
with each retry run at once."""

import pytest
from django.db import InterfaceError

from publishing.tasks import publish_drain, publish_sweep


def failing_first(calls: list, error: BaseException, result=0):
    """A service that raises `error` on its first call and returns `result` after; `calls` counts them."""

    def service(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise error
        return result

    return service


@pytest.mark.django_db
@pytest.mark.parametrize("task", [publish_drain, publish_sweep])
def test_a_connection_lost_under_a_drain_is_retried(task, monkeypatch):
    calls: list = []
    monkeypatch.setattr("publishing.services.publish_drain",
                        failing_first(calls, InterfaceError("connection already closed")))
    result = task.apply()
    assert (result.state, result.result, len(calls)) == ("SUCCESS", 0, 2)
