"""Helpers of the ingest tests: publish questions and look up their pub ids."""

from publishing import services
from publishing.models import Published, PublishKind


def publish_questions(questions) -> list[str]:
    """Publish these questions (and their topics) and return their pub ids, in order."""
    services.publish_request_many(kind=PublishKind.STUDY_QUESTION, source_ids=[q.id for q in questions])
    services.publish_drain()
    by_id = dict(
        Published.objects.filter(kind=PublishKind.STUDY_QUESTION, source_id__in=[q.id for q in questions])
        .values_list("source_id", "pub_id")
    )
    return [by_id[q.id] for q in questions]


def topic_pub_id(topic_id: int) -> str:
    return Published.objects.get(kind=PublishKind.STUDY_TOPIC, source_id=topic_id).pub_id
