"""Deleting a learner (the users' admin, study.services.accounts.user_delete): everything they own goes in one
transaction, their feed rows become tombstones, and the statements do not grow with their data."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from publishing.models import PublishOutbox
from study import models as m
from study.services.accounts import user_delete
from study.tests import factories as f

pytestmark = pytest.mark.django_db

OWNED = (m.StudyTopic, m.Question, m.QuizSession, m.QuestionAttempt, m.QuestionProgress, m.MemoCard, m.CardProgress,
         m.StudySession, m.Document)


def learner(attempts: int, cards: int):
    """A learner with `attempts` answers to two questions (each question's progress naming its last) and `cards`
    cards with evidence and progress, a study session with a snapshot, and a document on a topic."""
    user = f.UserFactory()
    topic = f.StudyTopicFactory(user=user)
    session = f.QuizSessionFactory(study_topic=topic)
    questions = f.QuestionFactory.create_batch(2, study_topic=topic)
    last = {}
    for n in range(attempts):
        last[n % 2] = f.QuestionAttemptFactory(quiz_session=session, question=questions[n % 2])
    for attempt in last.values():
        f.QuestionProgressFactory(question=attempt.question, last_outcome="correct", last_attempt=attempt,
                                  last_attempted_at=attempt.answered_at)
    for _ in range(cards):
        card = f.MemoCardFactory(user=user)
        f.CardEvidenceFactory(card=card)
        f.CardProgressFactory(card=card)
    document = f.DocumentFactory(user=user)
    f.TopicDocumentFactory(topic=topic, document=document)
    f.SessionAssetFactory(session=f.StudySessionFactory(user=user, study_topic=topic), document=document)
    return user


def owned_rows(user_id: int) -> dict[str, int]:
    counts = {model.__name__: model.objects.filter(user_id=user_id).count() for model in OWNED}
    counts["CardEvidence"] = m.CardEvidence.objects.filter(card__user_id=user_id).count()
    return {name: count for name, count in counts.items() if count}


def test_the_admin_deletes_a_learner_with_everything_they_own(admin_client):
    gone, kept = learner(attempts=3, cards=2), learner(attempts=2, cards=1)
    before = owned_rows(kept.pk)
    response = admin_client.post(reverse("admin:auth_user_delete", args=[gone.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=gone.pk).exists()
    assert owned_rows(gone.pk) == {}
    assert owned_rows(kept.pk) == before


def test_deleting_learners_in_bulk_in_the_admin(admin_client):
    users = [learner(attempts=2, cards=2) for _ in range(2)]
    response = admin_client.post(reverse("admin:auth_user_changelist"), {
        "action": "delete_selected", "post": "yes", "_selected_action": [u.pk for u in users]})
    assert response.status_code == 302
    assert not any(owned_rows(u.pk) for u in users)


def test_a_bulk_delete_that_fails_on_the_second_learner_deletes_none(admin_client, monkeypatch):
    """Django's bulk delete is all of them or none: deleted one by one without a transaction, the first learner
    stayed deleted when the second failed, and the action reported an error."""
    import study.admin.users

    first, second = learner(attempts=1, cards=2), learner(attempts=1, cards=1)

    def delete_or_fail(*, user):
        if user.pk == second.pk:
            raise RuntimeError("the second learner cannot be deleted")
        user_delete(user=user)

    monkeypatch.setattr(study.admin.users, "user_delete", delete_or_fail)
    admin_client.raise_request_exception = False
    response = admin_client.post(reverse("admin:auth_user_changelist"), {
        "action": "delete_selected", "post": "yes", "_selected_action": [first.pk, second.pk]})
    assert response.status_code == 500
    assert get_user_model().objects.filter(pk=first.pk).exists()
    assert m.MemoCard.objects.filter(user=first).count() == 2


@pytest.mark.parametrize("how", ["delete view", "delete_selected action"])
def test_the_admins_delete_runs_as_many_statements_for_150_cards_as_for_2(admin_client, how):
    """The admin's delete and bulk delete go through user_delete: Django's own (obj.delete(), queryset.delete())
    loaded every card and deleted them a hundred at a time, and timed out on a large learner."""
    def statements(user) -> int:
        if how == "delete view":
            url, data = reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"}
        else:
            url = reverse("admin:auth_user_changelist")
            data = {"action": "delete_selected", "post": "yes", "_selected_action": [user.pk]}
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.post(url, data)
        assert response.status_code == 302
        assert not get_user_model().objects.filter(pk=user.pk).exists()
        return len(queries)

    statements(f.UserFactory())  # the first request of the process also fills Django's caches (content types)
    small, large = learner(attempts=2, cards=2), learner(attempts=2, cards=150)
    assert statements(large) == statements(small)


def test_a_deleted_learners_feed_rows_are_retracted():
    from publishing.models import Published
    from publishing.services import publish_drain

    user = learner(attempts=1, cards=2)
    for card in m.MemoCard.objects.filter(user=user):
        PublishOutbox.objects.create(kind="study_card", source_id=card.pk)
    publish_drain()
    assert Published.objects.filter(user_id=user.pk, deleted=False).count() == 2
    user_delete(user=user)
    publish_drain()
    rows = Published.objects.filter(kind="study_card")
    assert rows.count() == 2 and all(row.deleted and row.user_id is None for row in rows)


def test_rows_of_other_users_pointing_at_the_learners_rows_fare_as_djangos_delete_had_them():
    """Rows an older version could write (before the same-owner keys): another user's study session filed under
    this learner's topic, another user's progress naming one of this learner's answers."""
    from django.db import connection

    gone, other = learner(attempts=2, cards=1), f.UserFactory()
    session = f.StudySessionFactory(user=other)
    m.StudySession.objects.filter(pk=session.pk).update(study_topic=m.StudyTopic.objects.get(user=gone))
    progress = f.QuestionProgressFactory(question=f.QuestionFactory(study_topic__user=other))
    m.QuestionProgress.objects.filter(pk=progress.pk).update(
        last_attempt=m.QuestionAttempt.objects.filter(user=gone).first())

    user_delete(user=gone)
    connection.check_constraints()  # the foreign keys are checked at commit: now, here
    session.refresh_from_db()
    progress.refresh_from_db()
    assert (session.study_topic_id, progress.last_attempt_id) == (None, None)
    assert owned_rows(gone.pk) == {}


def test_another_users_progress_on_the_learners_card_goes_with_the_card():
    """A row an older version could write: another user's card progress on this learner's card. Its card is deleted
    with one raw statement, which does not cascade: left behind, the progress pointed at a card that was gone, and
    the foreign key check at commit failed, so the learner could not be deleted at all."""
    gone, other = learner(attempts=1, cards=1), f.UserFactory()
    card = m.MemoCard.objects.get(user=gone)
    progress = f.CardProgressFactory(card=f.MemoCardFactory(user=other))
    m.CardProgress.objects.filter(pk=progress.pk).update(card=card)

    user_delete(user=gone)
    connection.check_constraints()  # the foreign keys are checked at commit: now, here
    assert not m.CardProgress.objects.filter(pk=progress.pk).exists()
    assert owned_rows(gone.pk) == {}


def test_the_statements_do_not_grow_with_the_learners_answers_and_cards():
    """Django's collector loaded every attempt and card and deleted them a hundred at a time."""
    def statements(user) -> int:
        with CaptureQueriesContext(connection) as queries:
            user_delete(user=user)
        return len(queries)

    small, large = learner(attempts=2, cards=2), learner(attempts=250, cards=150)
    assert statements(large) == statements(small)
