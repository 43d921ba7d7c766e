"""Schema-driven fuzzing (schemathesis) of every operation: never a 5xx, every status code, content type and
body as the schema declares.

The schema is the one drf-spectacular serves at /api/schema, loaded from the WSGI app in-process.
Requests are authenticated (a user token, or the viewer Bearer token for /publish and /ingest), and
about half of the generated ids are replaced by ids of real objects of that user, so the fuzzer
reaches past the 404s into the views' validation and services.
"""

import random

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from study.tests import factories as f
from studyserver.env import env_int
from studyserver.wsgi import application

VIEWER_TOKEN = "fuzz-viewer-token-0123456789"
MAX_EXAMPLES = env_int("FUZZ_MAX_EXAMPLES", 10, minimum=1)  # a deep run: FUZZ_MAX_EXAMPLES=300

schema = schemathesis.openapi.from_wsgi("/api/schema", application)


@pytest.fixture
def _keep_test_connection():
    """Like Django's test client: the raw WSGI app must not close the connection holding the test transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_world(user, settings, _keep_test_connection):
    """A user with one object of every kind, and the viewer channel configured."""
    settings.VIEWER_SYNC_TOKEN = VIEWER_TOKEN
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "auth": "100000/min", "viewer": "100000/min"}}
    topic = f.StudyTopicFactory(user=user)
    document = f.DocumentFactory(user=user)
    f.TopicDocumentFactory(topic=topic, document=document)
    session = f.StudySessionFactory(user=user, study_topic=topic)
    asset = f.SessionAssetFactory(session=session, document=document, asset_type="reference", role=None)
    questions = [f.QuestionFactory(study_topic=topic) for _ in range(3)]
    quiz = f.QuizSessionFactory(study_topic=topic, question_ids=[q.pk for q in questions])
    card = f.MemoCardFactory(user=user, study_topic=topic)
    f.MemoCardFactory(user=user, source_kind="question", source_question=questions[0], needs_review=True)
    token, _ = Token.objects.get_or_create(user=user)
    return {
        "token": token.key,
        "ids": {
            "study-topics": topic.pk, "documents": document.pk, "study-sessions": session.pk,
            "study-questions": questions[0].pk, "quiz-sessions": quiz.pk, "study-cards": card.pk,
        },
        "named": {
            "topic_id": topic.pk, "study_topic_id": topic.pk, "document_id": document.pk, "asset_id": asset.pk,
            "question_id": questions[0].pk, "source_question_id": questions[0].pk,
        },
    }


def _use_real_ids(case, world: dict, rng: random.Random) -> None:
    """Swap generated ids for real ones about half of the time (path and JSON body)."""
    if rng.random() < 0.5:
        return
    resource = case.path.split("/")[2] if case.path.startswith("/api/") else ""
    for name in list(case.path_parameters or {}):
        if name == "id" and resource in world["ids"]:
            case.path_parameters[name] = world["ids"][resource]
        elif name in world["named"]:
            case.path_parameters[name] = world["named"][name]
    if isinstance(case.query, dict):
        for name in list(case.query):
            if name in world["named"]:
                case.query[name] = world["named"][name]
    if isinstance(case.body, dict):
        for name in list(case.body):
            if name in world["named"] and isinstance(case.body[name], int):
                case.body[name] = world["named"][name]


@pytest.mark.django_db
@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_responses_match_the_schema(case, fuzz_world):
    _use_real_ids(case, fuzz_world, random.Random(repr(case.path_parameters) + repr(case.body)[:200]))
    if case.path.startswith(("/publish/", "/ingest/")):
        auth = f"Bearer {VIEWER_TOKEN}"
    else:
        auth = f"Token {fuzz_world['token']}"
    # Every example starts from the same objects; a database error cannot poison the next example.
    savepoint = transaction.savepoint()
    try:
        response = case.call(headers={"Authorization": auth})
    finally:
        transaction.savepoint_rollback(savepoint)
    # Every answer is declared: its status code, its content type and its body.
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    case.validate_response(response, checks=checks,
                           headers={"Authorization": auth})
