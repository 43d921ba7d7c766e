"""Ownership: a second user gets 404 on every detail and action route for each object of the first user.

The routes are read from the API router, so a route added later is walked too.
"""

import io
import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from study import models as m
from study.api.urls import router
from study.tests import factories as f

PLACEHOLDER = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _routes() -> list[tuple[str, str, str, str, bool]]:
    """(basename, path template, method, action, detail) for every route the viewsets implement."""
    found = []
    for prefix, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            mapping = router.get_method_map(viewset, route.mapping)
            url = route.url.format(prefix=prefix, lookup="(?P<pk>x)", trailing_slash="").strip("^$")
            template = PLACEHOLDER.sub(lambda match: "{" + match.group(1) + "}", url)
            for method, action in mapping.items():
                found.append((basename, "/api/" + template, method, action, route.detail))
    return found


ROUTES = _routes()
DETAIL_ROUTES = [r for r in ROUTES if r[4] or "{" in r[1]]
OWNED_BY_BASENAME = {
    "study-topic": "topic", "document": "document", "study-session": "session", "study-question": "question",
    "quiz-session": "quiz", "study-card": "card",
}


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "white").save(buffer, format="PNG")
    return SimpleUploadedFile("snap.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def world(user, other_user):
    """Objects of `user` (the first user), plus a few of `other_user` to use as the non-foreign part of a body."""
    topic = f.StudyTopicFactory(user=user)
    document = f.DocumentFactory(user=user)
    f.TopicDocumentFactory(topic=topic, document=document)
    session = f.StudySessionFactory(user=user, study_topic=topic)
    asset = f.SessionAssetFactory(session=session, document=document, asset_type="reference", role=None)
    question = f.QuestionFactory(study_topic=topic)
    quiz = f.QuizSessionFactory(study_topic=topic, question_ids=[question.pk])
    card = f.MemoCardFactory(user=user, study_topic=topic)
    pending = f.MemoCardFactory(user=user, source_kind="question", source_question=question, needs_review=True)
    f.CardProgressFactory(card=card, last_outcome="wrong", due_at=timezone.now() + timedelta(days=1))  # a miss
    mine = {
        "topic": f.StudyTopicFactory(user=other_user), "document": f.DocumentFactory(user=other_user),
    }
    mine["session"] = f.StudySessionFactory(user=other_user)
    return {
        "topic": topic, "document": document, "session": session, "asset": asset, "question": question,
        "quiz": quiz, "card": card, "pending": pending, "mine": mine,
    }


def _body(basename: str, action: str, world: dict):
    """A plausible body: valid but for the foreign object under test."""
    mine = world["mine"]
    bodies = {
        ("study-topic", "partial_update"): {"name": "taken over"},
        ("study-topic", "update"): {"name": "taken over"},
        ("study-topic", "link_document"): {"document_id": mine["document"].pk},
        ("document", "partial_update"): {"title": "taken over"},
        ("study-session", "partial_update"): {"subject": "taken over"},
        ("study-session", "update"): {"subject": "taken over"},
        ("study-session", "add_asset"): {"document_id": mine["document"].pk, "asset_type": "reference"},
        ("study-question", "partial_update"): {"subject": "taken over"},
        ("quiz-session", "attempts"): {"question_id": world["question"].pk, "selected_choice": 1},
        ("study-card", "partial_update"): {"fact": "taken over"},
        ("study-card", "update"): {"fact": "taken over", "cue": "taken over"},
        ("study-card", "rate"): {"outcome": "correct"},
    }
    return bodies.get((basename, action), {})


def _path(template: str, basename: str, world: dict) -> str:
    values = {
        "pk": world[OWNED_BY_BASENAME[basename]].pk if "{pk}" in template else None,
        "document_id": world["document"].pk,
        "asset_id": world["asset"].pk,
    }
    return template.format(**{k: v for k, v in values.items() if v is not None})


def _send(client, method: str, path: str, body, action: str):
    if action == "snapshot":
        return client.post(path, {"file": _png()}, format="multipart")
    if method in {"get", "delete"}:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def test_the_walk_covers_every_kind_of_object():
    basenames = {r[0] for r in DETAIL_ROUTES}
    assert basenames >= set(OWNED_BY_BASENAME)
    actions = {(r[0], r[3]) for r in DETAIL_ROUTES}
    for expected in [("study-topic", "retrieve"), ("study-topic", "destroy"), ("document", "download"),
                     ("study-session", "remove_asset"), ("study-question", "review_complete"),
                     ("quiz-session", "finish"), ("study-card", "rate")]:
        assert expected in actions


@pytest.mark.django_db
@pytest.mark.parametrize(("basename", "template", "method", "action", "detail"), DETAIL_ROUTES,
                         ids=[f"{r[2]} {r[1]}" for r in DETAIL_ROUTES])
def test_second_user_gets_404_on_every_object_route(world, other_client, api_client, basename, template, method,
                                                    action, detail):
    path = _path(template, basename, world)
    response = _send(other_client, method, path, _body(basename, action, world), action)
    if action == "by_document":
        # A list of the second user's topics that hold the document: none, or 404.
        assert response.status_code in {200, 404}, response.content
        assert response.status_code == 404 or response.json() in ([], {"count": 0, "next": None,
                                                                        "previous": None, "results": []})
    else:
        assert response.status_code == 404, (path, response.status_code, response.content[:300])
        assert response.json()["error_code"] == "not_found"
    # Nothing of the first user changed.
    for key in ("topic", "session", "question", "card"):
        before = world[key]
        after = type(before).objects.get(pk=before.pk)
        for field in ("name", "subject", "fact", "deleted_at", "needs_review"):
            if hasattr(before, field):
                assert getattr(after, field) == getattr(before, field), (key, field)
    assert m.SessionAsset.objects.filter(pk=world["asset"].pk).exists()
    assert m.TopicDocument.objects.filter(topic=world["topic"], document=world["document"]).exists()
    assert m.Document.objects.get(pk=world["document"].pk).deleted_at is None
    assert m.QuizSession.objects.get(pk=world["quiz"].pk).status == "in_progress"
    assert not m.QuestionAttempt.objects.filter(quiz_session=world["quiz"]).exists()
    assert m.CardProgress.objects.get(card=world["card"]).last_outcome == "wrong"  # not rated "correct"
    # The same read answers the owner, so the 404 above is about ownership, not a broken path.
    if method == "get" and action not in {"by_document"}:
        assert api_client.get(path).status_code == 200


@pytest.mark.django_db
def test_foreign_ids_inside_bodies_answer_404(world, other_client):
    mine = world["mine"]
    topic, document, question = world["topic"], world["document"], world["question"]
    cases = [
        ("/api/study-sessions", {"study_topic_id": topic.pk}),
        (f"/api/study-sessions/{mine['session'].pk}/assets", {"document_id": document.pk, "asset_type": "reference"}),
        (f"/api/study-topics/{mine['topic'].pk}/documents", {"document_id": document.pk}),
        ("/api/study-questions", {"study_topic_id": topic.pk, "subject": "s", "question_text": "q",
                                  "choices": ["a", "b"], "correct_choice": 1}),
        ("/api/study-questions/import", {"study_topic_id": topic.pk, "questions": [
            {"subject": "s", "question_text": "q", "choices": ["a", "b"], "correct_choice": 1}]}),
        ("/api/quiz-sessions", {"study_topic_id": topic.pk}),
    ]
    for path, body in cases:
        response = other_client.post(path, body, format="json")
        assert response.status_code == 404, (path, response.status_code, response.content[:300])
    assert not m.SessionAsset.objects.filter(document=document, session=mine["session"]).exists()
    assert not m.TopicDocument.objects.filter(topic=mine["topic"], document=document).exists()
    assert m.Question.objects.filter(study_topic=topic).count() == 1
    assert m.StudySession.objects.filter(study_topic=topic).count() == 1

    unlink = other_client.delete(f"/api/study-topics/{mine['topic'].pk}/documents/{document.pk}")
    assert unlink.status_code == 404
    remove = other_client.delete(f"/api/study-sessions/{mine['session'].pk}/assets/{world['asset'].pk}")
    assert remove.status_code == 404
    assert m.SessionAsset.objects.filter(pk=world["asset"].pk).exists()

    upload = other_client.post("/api/documents", {"file": SimpleUploadedFile("n.txt", b"x"),
                                                  "study_topic_id": topic.pk}, format="multipart")
    assert upload.status_code == 404
    assert not m.TopicDocument.objects.filter(topic=topic).exclude(document=document).exists()

    batch = other_client.post("/api/study-cards/approve-batch", {"source_question_id": question.pk}, format="json")
    assert batch.status_code == 404 or batch.json() == {"approved": 0}
    assert m.MemoCard.objects.get(pk=world["pending"].pk).needs_review is True

    current = other_client.get(f"/api/quiz-sessions/current?study_topic_id={topic.pk}")
    assert current.status_code == 404
    progress = other_client.get(f"/api/study-topics/{topic.pk}/progress?tab=due")
    assert progress.status_code == 404


def _ids(body) -> set:
    rows = body["results"] if isinstance(body, dict) and "results" in body else body
    found = set()
    for row in rows:
        if "cards" in row:  # card groups
            found |= {c["id"] for c in row["cards"]}
        elif "id" in row:
            found.add(row["id"])
    return found


@pytest.mark.django_db
def test_lists_filtered_by_foreign_ids_show_nothing_of_the_first_user(world, other_client):
    topic, document = world["topic"], world["document"]
    cards = {world["card"].pk, world["pending"].pk}
    lists = [
        ("/api/study-topics?limit=200", {topic.pk}),
        (f"/api/documents?study_topic_id={topic.pk}", {document.pk}),
        ("/api/documents", {document.pk}),
        (f"/api/study-sessions?study_topic_id={topic.pk}", {world["session"].pk}),
        (f"/api/study-sessions?document_id={document.pk}", {world["session"].pk}),
        (f"/api/study-questions?study_topic_id={topic.pk}", {world["question"].pk}),
        (f"/api/quiz-sessions?study_topic_id={topic.pk}", {world["quiz"].pk}),
        ("/api/study-cards?needs_review=true", cards),
        ("/api/study-cards?needs_review=false", cards),
        ("/api/study-cards/due", cards),
        ("/api/study-cards/deck", cards),
    ]
    for path, foreign in lists:
        response = other_client.get(path)
        assert response.status_code in {200, 404}, (path, response.status_code, response.content[:300])
        if response.status_code == 200:
            assert not (_ids(response.json()) & foreign), path
    assert other_client.get("/api/study-cards/needs-review/count").json() == {"count": 0}
    groups = other_client.get("/api/study-sessions/groups").json()["by_type"]["certification"]["groups"]
    assert sum(g["session_count"] for g in groups) == 1  # the second user's own session only
