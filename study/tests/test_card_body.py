"""PostgreSQL keeps each card's rendered body (study_memocard.body, migration 0002) equal to CardSerializer's
output through every kind of write: service edits, flags and approvals, batch updates, evidence added,
moved and removed in bulk, and a card whose evidence was written before the card itself."""

import json

import pytest
from django.db import connection, transaction
from django.utils import timezone

from study.api.card_serializers import CardSerializer
from study.models import CardEvidence, MemoCard
from study.services import cards as card_services
from study.tests import factories as f

pytestmark = [pytest.mark.django_db, pytest.mark.postgresql]  # PostgreSQL SQL and triggers


def stored_bodies() -> dict[int, dict]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, body FROM study_memocard")
        return {card_id: json.loads(body) for card_id, body in cursor.fetchall()}


def serializer_bodies() -> dict[int, dict]:
    cards = MemoCard.objects.prefetch_related("evidence").order_by("id")
    return {card.pk: CardSerializer(card).data for card in cards}


def assert_current() -> None:
    assert stored_bodies() == serializer_bodies()


@pytest.fixture
def question(user):
    return f.QuestionFactory(study_topic__user=user)


def test_bodies_follow_every_kind_of_write(user, question):
    made = card_services.card_candidate_create(
        question=question, card_format="qa", cue="큐 \"1\"", fact="사실\n1 😀\u2028",
        evidence=[{"source_type": "question", "source_id": question.pk, "snippet": "근거 <b>"},
                  {"source_type": "explanation", "snippet": "둘째\t근거"}],
    )
    other = f.MemoCardFactory(user=user, needs_review=True)
    assert stored_bodies()[made.pk]["evidence"][1]["snippet"] == "둘째\t근거"
    assert_current()

    card_services.card_update(card=made, cue="고친 큐", fact="고친 사실")
    assert_current()
    card_services.card_flag(card=made)
    assert stored_bodies()[made.pk]["needs_review"] is True
    assert_current()
    card_services.cards_approve_for_question(user=user, source_question_id=question.pk)  # queryset .update()
    assert stored_bodies()[made.pk]["needs_review"] is False
    assert_current()

    CardEvidence.objects.filter(card=made).update(card=other)  # evidence moved: both cards change
    assert stored_bodies()[made.pk]["evidence"] == [] and len(stored_bodies()[other.pk]["evidence"]) == 2
    assert_current()
    CardEvidence.objects.filter(card=other).delete()
    assert stored_bodies()[other.pk]["evidence"] == []
    assert_current()
    MemoCard.objects.filter(pk=other.pk).update(view_count=5, last_viewed_at=timezone.now())  # not body columns
    assert_current()


def test_evidence_written_before_its_card_in_one_transaction(user):
    """The evidence FK is deferred, so evidence may come first; the card's insert renders it."""
    with transaction.atomic():
        card_id = MemoCard.objects.order_by("-id").values_list("id", flat=True).first() or 0
        card_id += 1000
        CardEvidence.objects.create(card_id=card_id, source_type="question", source_id=1, snippet="먼저")
        f.MemoCardFactory(id=card_id, user=user)
    assert stored_bodies()[card_id]["evidence"] == [{"source_type": "question", "source_id": 1, "snippet": "먼저"}]
    assert_current()


def test_bulk_writes_render_every_card(user):
    cards = MemoCard.objects.bulk_create([
        MemoCard(user=user, source_kind="manual", format="qa", cue=f"c{n}", fact=f"f{n}", dedup_hash=f"{n:064}",
                 reviewed_at=timezone.now())
        for n in range(30)
    ])
    CardEvidence.objects.bulk_create([
        CardEvidence(card=card, source_type="document", source_id=n, snippet=f"s{n}")
        for n, card in enumerate(cards) for _ in range(n % 3)
    ])
    assert sum(len(body["evidence"]) for body in stored_bodies().values()) == 30
    assert_current()


@pytest.mark.django_db(transaction=True)
def test_concurrent_evidence_for_one_card_is_all_rendered():
    """Two transactions add evidence to one card at once: the second waits on the card row the first
    touched, and its rendering (a fresh snapshot in the trigger) includes the first's committed evidence."""
    import threading

    from studyserver.testing import hold_until_another_waits, run_concurrently

    card = f.MemoCardFactory()
    first_inserted = threading.Event()

    def add(snippet: str, *, hold: bool) -> None:
        with transaction.atomic():
            if not hold:
                first_inserted.wait(30)
            CardEvidence.objects.create(card_id=card.pk, source_type="document", snippet=snippet)
            if hold:
                first_inserted.set()
                assert hold_until_another_waits()  # the other transaction waits on the card row

    run_concurrently(lambda: add("first", hold=True), lambda: add("second", hold=False))
    assert [e["snippet"] for e in stored_bodies()[card.pk]["evidence"]] == ["first", "second"]
    assert_current()


def test_truncating_evidence_renders_every_card(user, question):
    card_services.card_candidate_create(
        question=question, card_format="qa", cue="큐", fact="사실",
        evidence=[{"source_type": "question", "source_id": question.pk, "snippet": "근거"}],
    )
    f.MemoCardFactory(user=user)
    assert any(body["evidence"] for body in stored_bodies().values())
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending (deferred) FK checks
        cursor.execute("TRUNCATE study_cardevidence")
    assert all(body["evidence"] == [] for body in stored_bodies().values())
    assert_current()


@pytest.mark.django_db(transaction=True)
def test_body_migration_reverses_and_renders_existing_cards(user):
    """Migrating back before 0002 drops the column, its functions and triggers; migrating forward again
    renders the cards written in between (0002's fill)."""
    from django.db.migrations.executor import MigrationExecutor

    def body_objects() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'study_memocard' AND column_name = 'body'"
                " UNION ALL SELECT tgname FROM pg_trigger WHERE tgname LIKE 'study_%%' AND NOT tgisinternal"
                " UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'study_card%%'"
            )
            return {name for (name,) in cursor.fetchall()}

    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    assert {"body", "study_memocard_body", "study_cardevidence_truncated", "study_card_body"} <= body_objects()
    try:
        executor.migrate([("study", "0001_initial")])
        assert body_objects() == set()
        card = f.MemoCardFactory(user=user)
        CardEvidence.objects.create(card=card, source_type="document", source_id=7, snippet="그 사이")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    assert stored_bodies()[card.pk]["evidence"] == [{"source_type": "document", "source_id": 7, "snippet": "그 사이"}]
    assert_current()
