"""GET /healthz."""

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/healthz/"])
def test_healthz_reports_database_and_eager_broker(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}


@pytest.mark.django_db
def test_healthz_reports_a_down_broker(client):
    from studyserver.testing import celery_conf

    with celery_conf(broker_url="redis://127.0.0.1:1/0", task_always_eager=False):  # nothing listens on port 1
        body = client.get("/healthz").json()
    assert body["broker"] == "down"
    assert body["database"] == "ok"


def test_unknown_path_answers_json_404(client):
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"
