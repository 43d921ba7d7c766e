"""Every admin page of every registered model answers, with a realistic data set: never a 500.

The walk iterates the admin site's registry, so a newly registered model is covered without touching this file.
For each model it GETs the changelist (plain, searched, filtered by each list filter's first choice, sorted by
each sortable column), the add page, and the change, history and delete pages of one existing row; plus the
admin index and the card review queue with each tab and filter. As a superuser every page is 200 except the
ones an admin deliberately does not offer (403); as a staff user with only view permissions every page is
200 or 403 and no POST gets through. The changelists' query counts do not grow with the number of rows.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import result_headers
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from publishing.models import Published, PublishKind, PublishOutbox
from publishing.services import publish_drain, publish_request
from study.models import MemoCard, QuestionAttempt, QuestionExplanation, QuizSession, SessionAnalysis
from study.models.cards import CardFormat, CardSourceKind
from study.tests.factories import (
    CardEvidenceFactory,
    CardProgressFactory,
    DocumentFactory,
    MemoCardFactory,
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    SessionAssetFactory,
    StudySessionFactory,
    StudyTopicFactory,
    TopicDocumentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SITE = admin.site
REVIEW_QUEUE = "admin:study_memocard_review"
# Pages an admin deliberately does not offer (its has_*_permission returns False): 403, even to a superuser.
NO_ADD = {MemoCard, Published, PublishOutbox, QuizSession, QuestionAttempt}
# The feed's rows, and the quiz records the app derives counts and spaced repetition from (ViewOnlyMixin).
NO_DELETE = {Published, PublishOutbox, QuizSession, QuestionAttempt}
# A changelist's queries, whatever the number of rows (the measured maximum is 10).
CHANGELIST_MAX_QUERIES = 14


# --- the data set ----------------------------------------------------------------------------------


def build(users: list, rounds: int) -> None:
    """`rounds` of everything the study app holds, for each user, plus the published rows and the outbox."""
    now = timezone.now()
    for user in users:
        for _ in range(rounds):
            topic = StudyTopicFactory(user=user, description="가스 안전")
            StudyTopicFactory(user=user, deleted_at=now)
            quiz = QuizSessionFactory(study_topic=topic, status="done", finalized_at=now,
                                      client_session_uuid=f"uuid-{topic.pk}")
            attempt = QuestionAttemptFactory(quiz_session=quiz)
            question = attempt.question
            QuestionProgressFactory(question=question, last_attempt=attempt, last_outcome="correct")
            QuestionFactory(study_topic=topic, deleted_at=now)
            QuestionExplanation.objects.create(user=user, question=question, text="LNG는 가스다",
                                               passages=[{"document_id": 1, "snippet": "가스", "rank": 1}])
            SessionAnalysis.objects.create(
                user=user, quiz_session=quiz, status="done",
                weakest_subjects=[{"subject": "가스안전관리", "accuracy": 0.5}, "not a dict"],
                subjects=[{"subject": "가스안전관리", "correct": 1, "wrong": 1, "unsure": 0, "accuracy": 0.5,
                           "topic_accuracy": 0.5}],
                chronic_question_ids=[question.pk], regressed_question_ids=[],
            )
            document = DocumentFactory(user=user, title="가스 노트", extract_status="failed",
                                       extract_error="가스 " * 50)
            DocumentFactory(user=user, deleted_at=now)
            TopicDocumentFactory(topic=topic, document=document)
            session = StudySessionFactory(study_topic=topic, topic="가스", source_text="LNG 가스")
            SessionAssetFactory(session=session, document=document)
            SessionAssetFactory(session=session, asset_type="source_scan", role="prompt")
            pending = MemoCardFactory(source_question=question, source_kind="question", needs_review=True,
                                      flagged_by="user", flagged_at=now, cue="가스 주성분?")
            approved = MemoCardFactory(study_topic=topic, format="cloze", cloze_text="LNG는 ____", reviewed_at=now,
                                       extra={"material": "가스 법규"})
            deleted = MemoCardFactory(user=user, deleted_at=now)
            for card in (pending, approved, deleted):
                CardEvidenceFactory(card=card, source_id=question.pk)
            CardProgressFactory(card=approved, last_outcome="correct", review_stage=2, due_at=now)
            CardProgressFactory(card=pending)
            publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.pk)
            publish_request(kind=PublishKind.STUDY_QUESTION, source_id=question.pk)
            publish_request(kind=PublishKind.STUDY_CARD, source_id=approved.pk)
        Token.objects.get_or_create(user=user)
    publish_drain()
    for user in users:  # rows still waiting in the outbox
        for _ in range(rounds):
            publish_request(kind=PublishKind.STUDY_TOPIC, source_id=StudyTopicFactory(user=user).pk)


@pytest.fixture
def learners() -> list:
    return [UserFactory(username="learner-a"), UserFactory(username="learner-b")]


@pytest.fixture
def dataset(learners) -> list:
    Group.objects.create(name="reviewers")
    build(learners, rounds=1)
    return learners


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def viewer_client(client):
    """A staff user holding only the view permission of every registered model."""
    viewer = UserFactory(username="viewer", is_staff=True)
    types = ContentType.objects.get_for_models(*SITE._registry, for_concrete_models=False).values()
    viewer.user_permissions.set(Permission.objects.filter(content_type__in=types, codename__startswith="view_"))
    client.force_login(viewer)
    return client


# --- the walk --------------------------------------------------------------------------------------


def registry() -> list:
    return sorted(SITE._registry.items(), key=lambda item: item[0]._meta.label)


def changelist_url(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def get(client, url: str, expected: int):
    response = client.get(url)
    assert response.status_code == expected, f"GET {url}: {response.status_code}, expected {expected}"
    return response


def changelist_variants(model, model_admin, response, *, every_order: bool) -> list[str]:
    """The changelist searched, filtered by each filter's first choice, and sorted by each sortable column
    (or by the first one only: the orders do not depend on permissions, the walk as a viewer skips the rest)."""
    base = changelist_url(model)
    cl = response.context["cl"]
    urls = [f"{base}?q=가스"] if model_admin.search_fields else []
    for spec in cl.filter_specs:
        choices = [c for c in spec.choices(cl) if not c.get("selected")]  # the first one is "All", selected
        if choices:
            urls.append(base + choices[0]["query_string"])
    orders = [base + header["url_primary"] for header in result_headers(cl) if header["sortable"]]
    return urls + (orders if every_order else orders[:1])


def walk(client, *, superuser: bool) -> int:
    """GET every page of every registered model; returns the number of pages visited."""
    visited = 0
    for model, model_admin in registry():
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        response = get(client, changelist_url(model), 200)
        for url in changelist_variants(model, model_admin, response, every_order=superuser):
            get(client, url, 200)
            visited += 1

        can_add = superuser and model not in NO_ADD
        get(client, reverse(f"admin:{label}_add"), 200 if can_add else 403)

        cl = response.context["cl"]
        assert cl.result_list, f"the data set has no {model._meta.verbose_name}: extend build()"
        change_url = cl.url_for_result(cl.result_list[0])  # ApiToken: addressed by user id, not by key
        get(client, change_url, 200)  # the view-only form when change is not permitted
        object_url = change_url.removesuffix("change/")
        get(client, f"{object_url}history/", 200)
        can_delete = superuser and model not in NO_DELETE
        get(client, f"{object_url}delete/", 200 if can_delete else 403)
        if not superuser:
            response = client.post(change_url, {})
            assert response.status_code == 403, f"POST {change_url}: {response.status_code}"
        visited += 5
    return visited


def review_queue_urls(users: list) -> list[str]:
    queue = reverse(REVIEW_QUEUE)
    urls = [queue, f"{queue}?status=pending", f"{queue}?status=approved", f"{queue}?status=bogus",
            f"{queue}?page=2", f"{queue}?page=x", f"{queue}?user=999999999", f"{queue}?user=-1"]
    urls += [f"{queue}?{status}user={user.pk}" for user in users for status in ("", "status=approved&")]
    urls += [f"{queue}?format={value}" for value, _ in CardFormat.choices]
    urls += [f"{queue}?source_kind={value}" for value, _ in CardSourceKind.choices]
    urls.append(f"{queue}?status=approved&format=cloze&source_kind=manual&user={users[0].pk}")
    return urls


def test_superuser_gets_every_admin_page(superuser_client, dataset):
    get(superuser_client, reverse("admin:index"), 200)
    for app_label in {model._meta.app_label for model in SITE._registry}:
        get(superuser_client, reverse("admin:app_list", args=[app_label]), 200)
    assert walk(superuser_client, superuser=True) > 5 * len(SITE._registry)
    for url in review_queue_urls(dataset):
        get(superuser_client, url, 200)


def test_view_only_staff_sees_every_page_and_writes_nothing(viewer_client, dataset):
    get(viewer_client, reverse("admin:index"), 200)
    walk(viewer_client, superuser=False)
    for url in review_queue_urls(dataset):
        get(viewer_client, url, 200)
    response = viewer_client.post(reverse("admin:study_memocard_review_action"),
                                  {"action": "approve_question", "question_id": 1})
    assert response.status_code == 403
    card = MemoCard.objects.filter(needs_review=True).first()
    response = viewer_client.post(reverse("admin:study_memocard_changelist"),
                                  {"action": "approve_selected", "_selected_action": [card.pk]})
    assert response.status_code == 200  # a viewer has no actions: the POST only shows the changelist again
    card.refresh_from_db()
    assert card.needs_review


def test_changelist_queries_do_not_grow_with_rows(superuser_client, dataset, django_assert_max_num_queries):
    def counts() -> dict:
        measured = {}
        for model, _ in registry():
            with CaptureQueriesContext(connection) as queries:
                get(superuser_client, changelist_url(model), 200)
            measured[model._meta.label] = len(queries)
        return measured

    few = counts()
    build(dataset, rounds=9)  # 10 of everything per user: 20 and more rows per changelist
    for model, _ in registry():
        with django_assert_max_num_queries(CHANGELIST_MAX_QUERIES):
            get(superuser_client, changelist_url(model), 200)
    many = counts()
    assert many == few, {label: (few[label], many[label]) for label in few if few[label] != many[label]}
