"""Deleting a user: their published rows become tombstones at fresh seqs, and seq never goes back."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from publishing import services, signals
from publishing.models import Published, PublishKind, PublishOutbox
from study.services.topics import topic_update
from study.tests.factories import CardProgressFactory, MemoCardFactory, QuestionFactory, StudyTopicFactory, UserFactory
from studyserver.testing import wait_for

pytestmark = pytest.mark.django_db

FEED = "/publish/feed"


def test_a_deleted_users_rows_are_tombstoned_and_later_changes_get_higher_seqs(viewer_client):
    kept = StudyTopicFactory()
    leaving = UserFactory()
    question = QuestionFactory(study_topic=StudyTopicFactory(user=leaving))
    progress = CardProgressFactory(card=MemoCardFactory(user=leaving, study_topic=question.study_topic))
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=kept.id)
    services.publish_drain()
    services.publish_request(kind=PublishKind.STUDY_QUESTION, source_id=question.id)
    services.publish_request(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=progress.id)
    services.publish_drain()  # the leaving user's rows hold the top seqs
    synced = viewer_client.get(FEED).json()
    leaving_pub_ids = {i["pub_id"] for i in synced["items"]} - {Published.objects.get(source_id=kept.id,
                                                                                      kind="study_topic").pub_id}
    assert len(leaving_pub_ids) == 4  # topic, question, card, progress

    get_user_model().objects.filter(pk=leaving.pk).delete()  # as the admin's delete does
    topic_update(topic=kept, data={"name": "renamed after the delete"})
    services.publish_drain()

    body = viewer_client.get(FEED, {"after": synced["next_after"]}).json()
    assert all(item["seq"] > synced["next_after"] for item in body["items"])
    assert [i["payload"]["name"] for i in body["items"] if not i["deleted"]] == ["renamed after the delete"]
    tombstones = {i["pub_id"] for i in body["items"] if i["deleted"] and i["payload"] is None}
    assert tombstones == leaving_pub_ids


def _waiting_on_the_publish_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            " AND query LIKE '%%pg_advisory_xact_lock%%'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_drain_during_the_delete_leaves_no_live_row_of_the_deleted_user(monkeypatch):
    """A drain between the retract (which lists the user's live rows) and the cascade: the row it would publish
    is in no list, its source then goes with the user, and it would stay live in the feed for good."""
    leaving = UserFactory()
    topic = StudyTopicFactory(user=leaving)
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)  # autocommit: drained at once
    late = StudyTopicFactory(user=leaving)
    Published.objects.filter(kind=PublishKind.STUDY_TOPIC, source_id=late.id).delete()
    PublishOutbox.objects.create(kind=PublishKind.STUDY_TOPIC, source_id=late.id)  # requested, not drained yet

    retracted, go = threading.Event(), threading.Event()
    retract = signals.user_published_retract

    def retract_then_pause(**kwargs) -> None:
        retract(**kwargs)
        retracted.set()
        assert go.wait(20)

    monkeypatch.setattr(signals, "user_published_retract", retract_then_pause)
    errors: list[BaseException] = []

    def in_thread(call) -> threading.Thread:
        def run() -> None:
            try:
                call()
            except BaseException as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    deleting = in_thread(lambda: get_user_model().objects.filter(pk=leaving.pk).delete())
    try:
        assert retracted.wait(20)
        draining = in_thread(services.publish_drain)
        assert wait_for(lambda: not draining.is_alive() or _waiting_on_the_publish_lock(), timeout=20)
    finally:
        go.set()
    deleting.join(30)
    draining.join(30)
    assert not deleting.is_alive() and not draining.is_alive()
    assert not errors
    services.publish_drain()

    assert not Published.objects.filter(kind=PublishKind.STUDY_TOPIC, deleted=False).exists()
    assert Published.objects.get(kind=PublishKind.STUDY_TOPIC, source_id=topic.id).deleted


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_migrating_back_before_ownerless_rows_were_allowed_is_refused_with_the_reason():
    """0006 let a deleted user's tombstones keep no user; its reverse made the column NOT NULL over them and failed
    with the database's bare IntegrityError."""
    from django.db.migrations.executor import MigrationExecutor

    from studyserver.migration_operations import RowsBreakConstraint

    leaving = UserFactory()
    topic = StudyTopicFactory(user=leaving)
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
    services.publish_drain()
    get_user_model().objects.filter(pk=leaving.pk).delete()
    services.publish_drain()
    assert Published.objects.filter(user=None, deleted=True).count() == 1

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        with pytest.raises(RowsBreakConstraint, match=r"^1 published row\(s\) belong to deleted users"):
            executor.migrate([("publishing", "0005_published_payload_chk")])
    finally:
        MigrationExecutor(connection).migrate(latest)
    assert Published.objects.filter(user=None, deleted=True).count() == 1  # refused: nothing lost
    assert MigrationExecutor(connection).migration_plan(latest) == []


def test_another_users_legacy_progress_on_the_deleted_learners_card_is_tombstoned():
    """Another user's progress on the learner's card (a row versions before study/0009 could write) went with the
    card, but sat in that other user's feed, which the delete does not retract: it stayed live for good."""
    from study import models as m
    from study.services.accounts import user_delete

    gone, other = UserFactory(), UserFactory()
    card = MemoCardFactory(user=gone)
    progress = CardProgressFactory(card=MemoCardFactory(user=other))
    m.CardProgress.objects.filter(pk=progress.pk).update(card=card)  # (the same-owner keys check at commit)
    services.publish_request(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=progress.pk)
    services.publish_drain()
    assert Published.objects.get(kind="study_card_progress", source_id=progress.pk).deleted is False

    user_delete(user=gone)
    services.publish_drain()

    assert not m.CardProgress.objects.filter(pk=progress.pk).exists()
    row = Published.objects.get(kind="study_card_progress", source_id=progress.pk)
    assert (row.deleted, row.payload) == (True, None)
