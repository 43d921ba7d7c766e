"""The publishing selectors: pub_id resolution within one kind, live rows only."""

import pytest

from publishing import selectors, services
from publishing.models import PublishKind
from study.tests.factories import QuestionFactory, StudyTopicFactory

pytestmark = pytest.mark.django_db

SHARED_ID = 7_000_001  # far above what the sequences hand out in a test run


def test_pub_ids_and_source_ids_resolve_within_their_kind_only():
    """Each table numbers its own rows, so a topic and a question may share a source id: a topic's id is looked
    up among topics, never answered with the pub_id of the question of the same number."""
    topic = StudyTopicFactory(id=SHARED_ID)
    question = QuestionFactory(id=SHARED_ID, study_topic=StudyTopicFactory(user=topic.user), user=topic.user)
    services.publish_request(kind=PublishKind.STUDY_TOPIC, source_id=topic.id)
    services.publish_request(kind=PublishKind.STUDY_QUESTION, source_id=question.id)
    services.publish_drain()

    topic_pub_ids = selectors.pub_ids_for(kind=PublishKind.STUDY_TOPIC, source_ids=[SHARED_ID])
    question_pub_ids = selectors.pub_ids_for(kind=PublishKind.STUDY_QUESTION, source_ids=[SHARED_ID])
    assert topic_pub_ids.keys() == question_pub_ids.keys() == {SHARED_ID}
    assert topic_pub_ids[SHARED_ID] != question_pub_ids[SHARED_ID]
    assert selectors.live_source_ids(kind=PublishKind.STUDY_TOPIC, pub_ids=[question_pub_ids[SHARED_ID]]) == {}
    assert selectors.live_source_ids(kind=PublishKind.STUDY_TOPIC, pub_ids=[topic_pub_ids[SHARED_ID]]) == {
        topic_pub_ids[SHARED_ID]: SHARED_ID
    }
