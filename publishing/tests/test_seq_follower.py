"""A feed follower never misses a change while writers and drains commit concurrently."""

import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from publishing import services
from publishing.models import Published, PublishKind
from publishing.tests.viewer_fixtures import VIEWER_TOKEN
from study.models import CardProgress, MemoCard, StudyTopic
from study.tests.factories import CardProgressFactory, MemoCardFactory, StudyTopicFactory, UserFactory

WRITERS, DRAINERS, ROUNDS = 3, 2, 40


def _mutate(rng: random.Random, card_ids: list[int], progress_ids: list[int], topic_id: int) -> None:
    """One small user-like write and its publish request, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        choice = rng.random()
        if choice < 0.5:
            card = MemoCard.objects.select_for_update().get(pk=rng.choice(card_ids))
            action = rng.choice(["cue", "review", "delete"])
            if action == "cue":
                card.cue = f"cue {uuid.uuid4().hex[:8]}"
            elif action == "review":
                card.needs_review = not card.needs_review
            else:
                card.deleted_at = None if card.deleted_at else now
            card.save()
            services.publish_request(kind=PublishKind.STUDY_CARD, source_id=card.id)
        elif choice < 0.85:
            progress = CardProgress.objects.select_for_update().get(pk=rng.choice(progress_ids))
            progress.review_stage = rng.randint(0, 4)
            progress.due_at = None if progress.review_stage in (0, 4) else now + timedelta(days=progress.review_stage)
            progress.last_outcome = rng.choice(["correct", "wrong", "unsure"])
            progress.last_reviewed_at = now
            progress.save()
            services.publish_request(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=progress.id)
        else:
            topic = StudyTopic.objects.select_for_update().get(pk=topic_id)
            topic.name = f"topic {uuid.uuid4().hex[:8]}"
            topic.save()
            services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_follower_sees_every_change_under_concurrent_writers_and_drains():
    user = UserFactory()
    topic = StudyTopicFactory(user=user)
    cards = MemoCardFactory.create_batch(12, user=user, study_topic=topic)
    progress = [CardProgressFactory(card=card) for card in cards[:8]]
    card_ids, progress_ids = [c.id for c in cards], [p.id for p in progress]

    writers_done = threading.Event()
    drains_done = threading.Event()
    errors: list[BaseException] = []
    follower_state: dict[str, tuple[bool, dict | None]] = {}
    barrier = threading.Barrier(WRITERS + DRAINERS + 1)

    def guarded(body):
        def run() -> None:
            try:
                barrier.wait()
                body()
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
            finally:
                connection.close()

        return run

    def writer(seed: int):
        def body() -> None:
            rng = random.Random(seed)
            for _ in range(ROUNDS):
                _mutate(rng, card_ids, progress_ids, topic.id)

        return body

    def drainer() -> None:
        while not writers_done.is_set():
            services.publish_drain(batch_size=3, max_batches=5)
        services.publish_drain(batch_size=3)

    def follower() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {VIEWER_TOKEN}")
        after, finishing = 0, False
        while True:
            finishing = drains_done.is_set()  # read before the page: a last full pass follows the end
            body = client.get("/publish/feed", {"after": after, "limit": 4}).json()
            for item in body["items"]:
                assert item["seq"] > after
                follower_state[item["pub_id"]] = (item["deleted"], item["payload"])
                after = item["seq"]
            assert body["next_after"] == after
            if finishing and not body["has_more"]:
                return

    writer_threads = [threading.Thread(target=guarded(writer(seed))) for seed in range(WRITERS)]
    drain_threads = [threading.Thread(target=guarded(drainer)) for _ in range(DRAINERS)]
    follower_thread = threading.Thread(target=guarded(follower))
    for thread in [*writer_threads, *drain_threads, follower_thread]:
        thread.start()
    for thread in writer_threads:
        thread.join()
    writers_done.set()
    for thread in drain_threads:
        thread.join()
    drains_done.set()
    follower_thread.join()

    assert errors == [], [repr(e) for e in errors]
    # The database's published rows are exactly the projection of every source row ...
    with transaction.atomic():
        check = services.publish_sources(
            kind_ids={
                PublishKind.STUDY_TOPIC: [topic.id],
                PublishKind.STUDY_CARD: card_ids,
                PublishKind.STUDY_CARD_PROGRESS: progress_ids,
            },
            dry_run=True,
        )
    assert (check.published, check.tombstoned) == (0, 0)
    # ... and the follower, who only ever read forward, holds the same state.
    database_state = {p.pub_id: (p.deleted, p.payload) for p in Published.objects.all()}
    assert follower_state == database_state
    assert Published.objects.filter(kind=PublishKind.STUDY_CARD_PROGRESS).count() == len(progress_ids)
