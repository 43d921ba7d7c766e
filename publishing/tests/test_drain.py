"""Outbox recording, the kick once per transaction, and the state-based, idempotent drain."""

import os
import threading

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from publishing import services
from publishing.models import Published, PublishKind, PublishOutbox
from publishing.tasks import publish_sweep
from study.models import QuestionExplanation
from study.tests.factories import (
    CardProgressFactory,
    MemoCardFactory,
    QuestionFactory,
    StudyTopicFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TOPIC, QUESTION, CARD, PROGRESS = (
    PublishKind.STUDY_TOPIC,
    PublishKind.STUDY_QUESTION,
    PublishKind.STUDY_CARD,
    PublishKind.STUDY_CARD_PROGRESS,
)


def published(kind, source_id) -> Published:
    return Published.objects.get(kind=kind, source_id=source_id)


def request_and_drain(django_capture_on_commit_callbacks, kind, source_id):
    with django_capture_on_commit_callbacks(execute=True):
        services.publish_request(kind=kind, source_id=source_id)


def test_requests_record_outbox_rows_and_one_kick_per_transaction(django_capture_on_commit_callbacks):
    topic = StudyTopicFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            for _ in range(5):
                services.publish_request(kind=TOPIC, source_id=topic.id)
            services.publish_request_many(kind=TOPIC, source_ids=[topic.id] * 300)
    assert PublishOutbox.objects.filter(kind=TOPIC, source_id=topic.id).count() == 305
    assert len(callbacks) == 1


def test_a_rolled_back_savepoint_drops_its_kick_and_the_next_request_registers_again(
    django_capture_on_commit_callbacks,
):
    topic = StudyTopicFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    services.publish_request(kind=TOPIC, source_id=topic.id)
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            services.publish_request(kind=TOPIC, source_id=topic.id)
    assert PublishOutbox.objects.count() == 1
    assert len(callbacks) == 1


def test_publish_disabled_records_nothing(settings, django_capture_on_commit_callbacks):
    settings.STUDY_PUBLISH_ENABLED = False
    topic = StudyTopicFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        services.publish_request(kind=TOPIC, source_id=topic.id)
        services.publish_request_many(kind=TOPIC, source_ids=[topic.id])
    assert not PublishOutbox.objects.exists()
    assert callbacks == []


def test_a_bulk_request_for_no_source_records_nothing_and_kicks_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        services.publish_request_many(kind=CARD, source_ids=[])
    assert not PublishOutbox.objects.exists()
    assert callbacks == []


def test_kick_after_commit_drains_the_outbox(django_capture_on_commit_callbacks):
    topic = StudyTopicFactory(name="가스기사", study_type="certification")
    request_and_drain(django_capture_on_commit_callbacks, TOPIC, topic.id)
    row = published(TOPIC, topic.id)
    assert row.payload == {"name": "가스기사", "study_type": "certification"}
    assert not row.deleted and row.user_id == topic.user_id
    assert not PublishOutbox.objects.exists()


def test_pub_id_is_opaque_and_stable_across_changes(django_capture_on_commit_callbacks):
    topic, neighbour = StudyTopicFactory(), StudyTopicFactory()
    request_and_drain(django_capture_on_commit_callbacks, TOPIC, topic.id)
    request_and_drain(django_capture_on_commit_callbacks, TOPIC, neighbour.id)
    first = published(TOPIC, topic.id)
    # Random, long, and unrelated for neighbouring ids (a short id's digits may well occur by chance).
    assert len(first.pub_id) >= 20 and first.pub_id != str(topic.id)
    assert len(os.path.commonprefix([first.pub_id, published(TOPIC, neighbour.id).pub_id])) < 8
    topic.name = "renamed"
    topic.save()
    request_and_drain(django_capture_on_commit_callbacks, TOPIC, topic.id)
    second = published(TOPIC, topic.id)
    assert second.pub_id == first.pub_id
    assert second.seq > first.seq and second.payload["name"] == "renamed"


def test_repeated_requests_coalesce_and_unchanged_rows_keep_their_seq(django_capture_on_commit_callbacks):
    card = MemoCardFactory()
    services.publish_request_many(kind=CARD, source_ids=[card.id] * 4)
    assert services.publish_drain() == 4
    row = published(CARD, card.id)
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_drain()
    services.publish_drain()  # safe to run twice: nothing left, nothing changes
    again = published(CARD, card.id)
    assert (again.seq, again.updated_at) == (row.seq, row.updated_at)
    assert Published.objects.filter(kind=CARD).count() == 1


def test_card_in_review_is_a_tombstone_and_comes_back_with_the_same_pub_id():
    card = MemoCardFactory(needs_review=True)
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_drain()
    assert not Published.objects.filter(kind=CARD).exists()  # never shown: nothing to retract

    card.needs_review, card.reviewed_at = False, timezone.now()
    card.save()
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_drain()
    shown = published(CARD, card.id)
    assert shown.payload["cue"] == card.cue

    card.needs_review = True
    card.save()
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_drain()
    back = published(CARD, card.id)
    assert back.deleted and back.payload is None and back.pub_id == shown.pub_id and back.seq > shown.seq


@pytest.mark.parametrize("kind", [TOPIC, QUESTION, CARD])
def test_soft_deleted_sources_are_tombstoned(kind):
    row = {TOPIC: StudyTopicFactory, QUESTION: QuestionFactory, CARD: MemoCardFactory}[kind]()
    services.publish_request(kind=kind, source_id=row.id)
    services.publish_drain()
    assert not published(kind, row.id).deleted
    row.deleted_at = timezone.now()
    row.save()
    services.publish_request(kind=kind, source_id=row.id)
    services.publish_drain()
    tomb = published(kind, row.id)
    assert tomb.deleted and tomb.payload is None


def test_deleting_a_topic_tombstones_its_questions():
    """Questions of a deleted topic are gone for the learner (lists, quizzes, ingest): the viewer too."""
    from study.services.topics import topic_delete

    topic = StudyTopicFactory()
    kept_elsewhere = QuestionFactory(study_topic=StudyTopicFactory(user=topic.user))
    questions = QuestionFactory.create_batch(2, study_topic=topic, user=topic.user)
    for question in [*questions, kept_elsewhere]:
        services.publish_request(kind=QUESTION, source_id=question.id)
    services.publish_drain()
    assert not any(published(QUESTION, q.id).deleted for q in questions)

    topic_delete(topic=topic)
    services.publish_drain()
    assert published(TOPIC, topic.id).deleted
    assert all(published(QUESTION, q.id).deleted for q in questions)
    assert not published(QUESTION, kept_elsewhere.id).deleted

    # a later re-projection (backfill, another request) keeps them tombstoned
    services.publish_sources(kind_ids={QUESTION: [q.id for q in questions]})
    assert all(published(QUESTION, q.id).deleted for q in questions)


def test_a_hard_deleted_source_is_tombstoned_once_and_an_unknown_one_ignored():
    topic = StudyTopicFactory()
    services.publish_request(kind=TOPIC, source_id=topic.id)
    services.publish_drain()
    topic_id = topic.id
    topic.delete()
    services.publish_request(kind=TOPIC, source_id=topic_id)
    services.publish_request(kind=TOPIC, source_id=10**12)
    services.publish_drain()
    tomb = published(TOPIC, topic_id)
    assert tomb.deleted
    assert not Published.objects.filter(source_id=10**12).exists()
    assert not PublishOutbox.objects.exists()

    # requested again (a backfill, a late request of the same row): the tombstone keeps its seq, readers see nothing
    services.publish_request(kind=TOPIC, source_id=topic_id)
    services.publish_drain()
    again = published(TOPIC, topic_id)
    assert again.deleted and (again.seq, again.updated_at) == (tomb.seq, tomb.updated_at)


def test_a_topic_comes_before_its_questions_in_seq_whatever_their_ids():
    """Seq follows the kinds' reference order, not the source ids: a question numbered below its topic still
    comes after it, so a reader paging the feed meets the topic first."""
    topic = StudyTopicFactory(id=7_000_002)  # ids far above what the sequences hand out in a test run
    question = QuestionFactory(id=7_000_001, study_topic=topic, user=topic.user)
    services.publish_request(kind=QUESTION, source_id=question.id)
    services.publish_request(kind=TOPIC, source_id=topic.id)
    services.publish_drain()
    assert published(TOPIC, topic.id).seq < published(QUESTION, question.id).seq


def test_question_payload_references_its_topic_which_is_published_too():
    question = QuestionFactory(explanation="메탄이 주성분")
    QuestionExplanation.objects.create(user=question.user, question=question, text="AI says 메탄")
    services.publish_request(kind=QUESTION, source_id=question.id)
    services.publish_drain()
    topic_row = published(TOPIC, question.study_topic_id)
    row = published(QUESTION, question.id)
    assert row.payload == {
        "topic_pub_id": topic_row.pub_id,
        "subject": question.subject,
        "question_text": question.question_text,
        "choices": question.choices,
        "correct_choice": 1,
        "explanation": "메탄이 주성분",
        "ai_explanation": "AI says 메탄",
    }
    assert topic_row.seq < row.seq  # a reader meets the topic first


def test_progress_alone_allocates_card_question_and_topic_and_survives_card_deletion():
    question = QuestionFactory()
    card = MemoCardFactory(
        user=question.user, source_kind="question", source_question=question, extra={"material": "m"}
    )
    progress = CardProgressFactory(card=card, last_outcome="correct", last_reviewed_at=timezone.now(), due_at=None)
    services.publish_request(kind=PROGRESS, source_id=progress.id)
    services.publish_drain()
    row = published(PROGRESS, progress.id)
    card_row = published(CARD, card.id)
    assert row.payload["card_pub_id"] == card_row.pub_id
    assert row.payload["topic_pub_id"] == published(TOPIC, question.study_topic_id).pub_id
    assert row.payload["due_at"] is None and row.payload["review_stage"] == 0
    assert card_row.payload["question_pub_id"] == published(QUESTION, question.id).pub_id
    assert card_row.payload["material"] == "m"

    card.deleted_at = timezone.now()
    card.save()
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_request(kind=PROGRESS, source_id=progress.id)
    services.publish_drain()
    assert published(CARD, card.id).deleted
    still = published(PROGRESS, progress.id)
    assert not still.deleted and still.payload["card_pub_id"] == card_row.pub_id


def test_referenced_card_in_review_gets_a_tombstone_so_the_reference_resolves():
    card = MemoCardFactory(needs_review=True)
    progress = CardProgressFactory(card=card)
    services.publish_request(kind=PROGRESS, source_id=progress.id)
    services.publish_drain()
    card_row = published(CARD, card.id)
    assert card_row.deleted
    assert published(PROGRESS, progress.id).payload["card_pub_id"] == card_row.pub_id


def test_a_card_deleted_before_its_first_drain_is_tombstoned_under_the_pub_id_its_progress_carries():
    """Card and progress in one batch, the card never published and already deleted: without a tombstone
    the progress would carry a pub_id that no row has, and a later drain would mint another one."""
    card = MemoCardFactory(deleted_at=timezone.now())
    progress = CardProgressFactory(card=card)
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_request(kind=PROGRESS, source_id=progress.id)
    services.publish_drain()
    card_row = published(CARD, card.id)
    assert card_row.deleted
    assert published(PROGRESS, progress.id).payload["card_pub_id"] == card_row.pub_id

    services.publish_sources(kind_ids={PROGRESS: [progress.id]})
    assert published(CARD, card.id).pub_id == card_row.pub_id
    assert published(PROGRESS, progress.id).payload["card_pub_id"] == card_row.pub_id


def test_a_card_never_published_and_referenced_by_nothing_stays_unpublished():
    card = MemoCardFactory(deleted_at=timezone.now())
    services.publish_request(kind=CARD, source_id=card.id)
    services.publish_drain()
    assert not Published.objects.filter(kind=CARD, source_id=card.id).exists()


def test_sweep_drains_what_a_lost_kick_left_behind():
    topics = StudyTopicFactory.create_batch(3)
    # No on-commit callback runs here: as if the broker was down when the writes committed.
    services.publish_request_many(kind=TOPIC, source_ids=[t.id for t in topics])
    assert PublishOutbox.objects.count() == 3
    assert publish_sweep.apply().result == 3  # .result: .get() refuses after an in-process worker ran
    assert Published.objects.filter(kind=TOPIC).count() == 3
    assert not PublishOutbox.objects.exists()


def test_drain_works_batch_by_batch_up_to_max_batches_and_counts_what_it_claimed():
    topics = StudyTopicFactory.create_batch(5)
    services.publish_request_many(kind=TOPIC, source_ids=[t.id for t in topics])
    assert services.publish_drain(batch_size=2, max_batches=2) == 4
    assert list(PublishOutbox.objects.values_list("source_id", flat=True)) == [topics[4].id]  # the newest waits
    assert services.publish_drain(batch_size=2) == 1
    assert Published.objects.filter(kind=TOPIC).count() == 5 and not PublishOutbox.objects.exists()


def test_a_full_last_batch_is_followed_by_one_more_claim():
    topics = StudyTopicFactory.create_batch(4)
    services.publish_request_many(kind=TOPIC, source_ids=[t.id for t in topics])
    assert services.publish_drain(batch_size=2) == 4
    assert not PublishOutbox.objects.exists()


def test_a_drain_that_fails_keeps_every_request_it_claimed():
    """The outbox rows go in the transaction that publishes them: a drain that fails midway (here the seq
    cannot grow any further) loses no request; the next drain finds them all."""
    topic = StudyTopicFactory()
    Published.objects.create(pub_id="top", kind=TOPIC, source_id=10**12, deleted=True, seq=2**63 - 1, item="{}")
    services.publish_request(kind=TOPIC, source_id=topic.id)
    with pytest.raises((DataError, OverflowError)):
        services.publish_drain()
    assert list(PublishOutbox.objects.values_list("kind", "source_id")) == [(TOPIC, topic.id)]
    assert not Published.objects.filter(kind=TOPIC, source_id=topic.id).exists()


def test_drain_batch_query_count_does_not_grow_with_the_batch(django_assert_max_num_queries):
    user = UserFactory()
    cards = MemoCardFactory.create_batch(60, user=user)
    services.publish_request_many(kind=CARD, source_ids=[c.id for c in cards])
    # claim, lock, existing, cards, refs, max seq, upsert, delete (+ savepoint)
    with django_assert_max_num_queries(10):
        assert services.publish_drain_batch(batch_size=100) == 60
    assert Published.objects.filter(kind=CARD).count() == 60


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_publish_each_source_once():
    user = UserFactory()
    cards = MemoCardFactory.create_batch(40, user=user)
    # Written as the lost kick of a commit leaves them (no drain has run): in eager mode a kick would have drained
    # them all at commit, and the drains below would race over an empty outbox.
    PublishOutbox.objects.bulk_create([PublishOutbox(kind=CARD, source_id=c.id) for _ in range(3) for c in cards])
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []
    drained: list[int] = []

    def drain() -> None:
        try:
            barrier.wait()
            drained.append(services.publish_drain(batch_size=7))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(drained) == 120  # each request claimed by one drain only
    assert not PublishOutbox.objects.exists()
    rows = list(Published.objects.filter(kind=CARD))
    assert sorted(r.source_id for r in rows) == sorted(c.id for c in cards)
    assert len({r.seq for r in Published.objects.all()}) == Published.objects.count()
