"""Deleting a user: their published rows become tombstones at fresh seqs, and seq never goes back."""

import pytest
from django.contrib.auth import get_user_model

from publishing import services
from publishing.models import Published, PublishKind
from study.services.topics import topic_update
from study.tests.factories import CardProgressFactory, MemoCardFactory, QuestionFactory, StudyTopicFactory, UserFactory

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
