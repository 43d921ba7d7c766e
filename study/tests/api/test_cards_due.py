"""Card SR: the due list and rating through the shared ladder."""

import functools
import threading
import unicodedata
from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from publishing.models import PublishOutbox
from study import scheduling
from study.models import CardProgress, MemoCard
from study.services.cards import card_rate_for_user
from study.tests.factories import CardEvidenceFactory, CardProgressFactory, MemoCardFactory, UserFactory
from studyserver.testing import hold_until_another_waits, run_concurrently

URL = "/api/study-cards"

# Every rating and due-list test runs on the prepared-statement fast path and on its ORM twin.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("hot_path")]


def rate(client, card, outcome, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"{URL}/{card.pk}/rate", {"outcome": outcome}, format="json", headers=headers)


# --- rating -------------------------------------------------------------------------------------


def test_first_recall_correct_marks_known_without_due(api_client, user):
    card = MemoCardFactory(user=user)
    response = rate(api_client, card, "암")
    assert response.status_code == 200
    assert response.json() == {"card_id": card.pk, "outcome": "correct", "review_stage": 0, "due_at": None}
    progress = CardProgress.objects.get(card=card)
    assert (progress.user_id, progress.last_outcome, progress.review_stage, progress.due_at) == (
        user.pk, "correct", 0, None,
    )
    assert progress.last_reviewed_at is not None
    assert list(PublishOutbox.objects.filter(kind="study_card_progress").values_list("source_id", flat=True)) == [
        progress.pk
    ]


@pytest.mark.parametrize(("word", "canonical"), [("애매", "unsure"), ("모름", "wrong"), ("unsure", "unsure"),
                                                 ("wrong", "wrong"),
                                                 (unicodedata.normalize("NFD", "모름"), "wrong")])  # (typed on iOS)
def test_first_recall_miss_is_due_tomorrow(api_client, user, word, canonical):
    card = MemoCardFactory(user=user)
    before = timezone.now()
    response = rate(api_client, card, word)
    assert response.status_code == 200
    body = response.json()
    assert body["outcome"] == canonical
    assert body["review_stage"] == 0
    progress = CardProgress.objects.get(card=card)
    assert before + timedelta(days=1) <= progress.due_at <= timezone.now() + timedelta(days=1)


@pytest.mark.parametrize(
    ("stage", "outcome", "expected_stage", "days"),
    [(0, "correct", 1, 3), (1, "암", 2, 7), (2, "correct", 3, 14), (3, "correct", 4, None), (3, "모름", 0, 1),
     (2, "애매", 0, 1)],
)
def test_scheduled_card_climbs_the_shared_ladder(api_client, user, stage, outcome, expected_stage, days):
    card = MemoCardFactory(user=user)
    CardProgressFactory(card=card, review_stage=stage, due_at=timezone.now() - timedelta(hours=1),
                        last_outcome="wrong")
    before = timezone.now()
    response = rate(api_client, card, outcome)
    assert response.status_code == 200
    progress = CardProgress.objects.get(card=card)
    expected = scheduling.advance(stage, {"암": "correct", "모름": "wrong", "애매": "unsure"}.get(outcome, outcome),
                                  before)
    assert progress.review_stage == expected_stage == expected.stage
    if days is None:
        assert progress.due_at is None
        assert response.json()["due_at"] is None
    else:
        assert before + timedelta(days=days) <= progress.due_at <= timezone.now() + timedelta(days=days)
    assert CardProgress.objects.filter(card=card).count() == 1


def test_unreviewed_card_cannot_be_rated(api_client, user):
    card = MemoCardFactory(user=user, needs_review=True)
    response = rate(api_client, card, "암")
    assert response.status_code == 400
    assert response.json()["error_code"] == "not_reviewed"
    assert not CardProgress.objects.exists()
    assert not PublishOutbox.objects.exists()


@pytest.mark.parametrize("body", [{"outcome": "skipped"}, {"outcome": "알아"}, {"outcome": ""}, {}, {"outcome": 1}])
def test_unknown_outcome_is_400(api_client, user, body):
    card = MemoCardFactory(user=user)
    response = api_client.post(f"{URL}/{card.pk}/rate", body, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"
    assert not CardProgress.objects.exists()


def progress_outbox() -> list[int]:
    return list(PublishOutbox.objects.filter(kind="study_card_progress").values_list("source_id", flat=True))


@pytest.mark.parametrize(("stage", "due_in", "first_body"), [
    (None, None, {"review_stage": 0, "due_at": None}),  # a new card: known
    (1, -timedelta(hours=1), {"review_stage": 2}),  # a due card: one step up
])
def test_a_rating_resent_with_its_idempotency_key_climbs_once(api_client, user, stage, due_in, first_body):
    """An app retries a rating whose answer it lost, with the same key: nothing moves, the first answer comes back."""
    card = MemoCardFactory(user=user)
    if stage is not None:
        CardProgressFactory(card=card, user=user, review_stage=stage, due_at=timezone.now() + due_in)
    first = rate(api_client, card, "암", key="rating-7f3a")
    assert first.status_code == 200 and first_body.items() <= first.json().items()
    before = CardProgress.objects.values().get(card=card)

    again = rate(api_client, card, "correct", key="rating-7f3a")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert CardProgress.objects.values().get(card=card) == before  # last_reviewed_at included
    assert progress_outbox() == [before["id"]]


def test_without_a_key_or_with_a_new_one_every_rating_counts(api_client, user):
    """SPEC: on a scheduled card the ladder advances, each time."""
    card = MemoCardFactory(user=user)
    CardProgressFactory(card=card, user=user, review_stage=1, due_at=timezone.now() - timedelta(hours=1))

    assert rate(api_client, card, "correct").json()["review_stage"] == 2
    assert rate(api_client, card, "correct").json()["review_stage"] == 3
    assert rate(api_client, card, "correct", key="a").json()["review_stage"] == 4
    assert rate(api_client, card, "모름", key="b").json()["review_stage"] == 0
    assert len(progress_outbox()) == 4


def test_a_key_resent_with_another_outcome_is_409_and_changes_nothing(api_client, user):
    card = MemoCardFactory(user=user)
    rate(api_client, card, "모름", key="k1")
    before = CardProgress.objects.values().get(card=card)

    response = rate(api_client, card, "암", key="k1")

    assert response.status_code == 409 and response.json()["error_code"] == "conflict"
    assert CardProgress.objects.values().get(card=card) == before


@pytest.mark.parametrize("key", ["x" * 65, "two words", "키"])
def test_a_malformed_idempotency_key_is_400(api_client, user, key):
    card = MemoCardFactory(user=user)
    response = api_client.post(f"{URL}/{card.pk}/rate", {"outcome": "암"}, format="json",
                               headers={"Idempotency-Key": key})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
    assert not CardProgress.objects.exists()


@pytest.mark.parametrize("stage", [0, 4])  # known (a first recall was correct), mastered
def test_a_correct_rating_of_a_card_with_no_due_date_keeps_it_out_of_the_queue(api_client, user, stage):
    """Known means it does not flood the queue: recalled again, it stays known (rated, and published)."""
    card = MemoCardFactory(user=user)
    progress = CardProgressFactory(card=card, user=user, review_stage=stage, due_at=None, last_outcome="correct")

    body = rate(api_client, card, "암").json()

    assert (body["review_stage"], body["due_at"]) == (stage, None)
    progress.refresh_from_db()
    assert (progress.review_stage, progress.due_at, progress.last_outcome) == (stage, None, "correct")
    assert api_client.get(f"{URL}/due").json() == []
    assert progress_outbox() == [progress.pk]


def test_a_miss_of_a_known_card_puts_it_due_tomorrow(api_client, user):
    card = MemoCardFactory(user=user)
    CardProgressFactory(card=card, user=user, review_stage=0, due_at=None, last_outcome="correct")
    before = timezone.now()

    body = rate(api_client, card, "모름").json()

    assert body["review_stage"] == 0
    progress = CardProgress.objects.get(card=card)
    assert before + timedelta(days=1) <= progress.due_at <= timezone.now() + timedelta(days=1)


def test_a_correct_rating_after_a_miss_climbs_at_once(api_client, user):
    """Missed, then recalled in the same sitting: a new outcome, not a repeat (the ladder advances from stage 0)."""
    card = MemoCardFactory(user=user)
    CardProgressFactory(card=card, user=user, review_stage=2, due_at=timezone.now() - timedelta(hours=1))
    assert rate(api_client, card, "모름").json()["review_stage"] == 0

    body = rate(api_client, card, "암").json()

    assert body["review_stage"] == 1 and body["outcome"] == "correct"
    assert CardProgress.objects.get(card=card).last_outcome == "correct"


@pytest.mark.parametrize("word", ["모름", "애매"])
def test_a_miss_sent_twice_without_a_key_counts_twice_and_stays_at_stage_0(api_client, user, word):
    card = MemoCardFactory(user=user)
    CardProgressFactory(card=card, user=user, review_stage=3, due_at=timezone.now() - timedelta(hours=1))
    before = timezone.now()

    first, again = rate(api_client, card, word).json(), rate(api_client, card, word).json()

    progress = CardProgress.objects.get(card=card)
    assert first["review_stage"] == again["review_stage"] == progress.review_stage == 0
    assert before + timedelta(days=1) <= progress.due_at <= timezone.now() + timedelta(days=1)
    assert progress_outbox() == [progress.pk, progress.pk]  # each published


def test_deleted_card_cannot_be_rated(api_client, user):
    card = MemoCardFactory(user=user, deleted_at=timezone.now())
    assert rate(api_client, card, "암").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_ratings_make_one_progress_row(client_for):
    owner = UserFactory()
    card = MemoCardFactory(user=owner)
    clients = [client_for(owner), client_for(owner)]
    statuses = run_concurrently(*(functools.partial(rate, client, card, "모름") for client in clients))
    assert [status.status_code for status in statuses] == [200, 200]
    progress = CardProgress.objects.get(card=card)
    # the second rating saw the first one's row: a miss again keeps stage 0, due tomorrow
    assert progress.review_stage == 0 and progress.due_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_rating_sent_twice_at_once_with_one_key_climbs_once(client_for):
    owner = UserFactory()
    card = MemoCardFactory(user=owner)
    CardProgressFactory(card=card, user=owner, review_stage=1, due_at=timezone.now() - timedelta(hours=1))
    clients = [client_for(owner), client_for(owner)]
    responses = run_concurrently(*(functools.partial(rate, client, card, "암", key="tap-1") for client in clients))
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json() == responses[1].json()
    assert CardProgress.objects.get(card=card).review_stage == 2  # not 3


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
def test_a_rating_that_waited_for_the_card_lock_is_timed_after_the_one_that_held_it(client_for):
    """Its time was taken before it waited: committed last, it moved last_reviewed_at and due_at back."""
    owner = UserFactory()
    card = MemoCardFactory(user=owner)
    CardProgressFactory(card=card, user=owner, review_stage=1, due_at=timezone.now() - timedelta(hours=1))
    locked = threading.Event()
    first_answer = {}

    def first() -> None:
        with transaction.atomic():
            MemoCard.objects.select_for_update().get(pk=card.pk)
            locked.set()
            assert hold_until_another_waits()
            first_answer["due_at"] = card_rate_for_user(user_id=owner.pk, card_id=card.pk, outcome="wrong").due_at

    def second():
        locked.wait(10)
        return rate(client_for(owner), card, "wrong")

    waited = run_concurrently(first, second)[1]
    assert waited.status_code == 200
    progress = CardProgress.objects.get(card=card)
    assert progress.due_at >= first_answer["due_at"]  # the later rating's day counts from its own, later, time
    assert progress.due_at == datetime.fromisoformat(waited.json()["due_at"])


# --- due list -----------------------------------------------------------------------------------


def test_due_list_scheduled_first_then_new(api_client, user, other_user):
    now = timezone.now()
    new_a = MemoCardFactory(user=user)
    later_due = MemoCardFactory(user=user)
    CardProgressFactory(card=later_due, review_stage=2, due_at=now - timedelta(hours=1))
    earlier_due = MemoCardFactory(user=user)
    CardProgressFactory(card=earlier_due, review_stage=1, due_at=now - timedelta(days=2))
    new_b = MemoCardFactory(user=user)
    # not due: future, known (due null), mastered, unreviewed, deleted, someone else's
    CardProgressFactory(card=MemoCardFactory(user=user), review_stage=1, due_at=now + timedelta(days=1))
    CardProgressFactory(card=MemoCardFactory(user=user), review_stage=0, due_at=None)
    CardProgressFactory(card=MemoCardFactory(user=user), review_stage=4, due_at=None)
    MemoCardFactory(user=user, needs_review=True)
    MemoCardFactory(user=user, deleted_at=now)
    MemoCardFactory(user=other_user)
    # rated, then deleted or sent back to review: their progress stays (SPEC) but they are not due
    CardProgressFactory(card=MemoCardFactory(user=user, deleted_at=now), review_stage=1, due_at=now - timedelta(days=3))
    CardProgressFactory(card=MemoCardFactory(user=user, needs_review=True), review_stage=1,
                        due_at=now - timedelta(days=3))

    response = api_client.get(f"{URL}/due")
    assert response.status_code == 200
    body = response.json()
    assert [c["id"] for c in body] == [earlier_due.pk, later_due.pk, new_a.pk, new_b.pk]
    assert [c["review_stage"] for c in body] == [1, 2, None, None]

    limited = api_client.get(f"{URL}/due/?limit=3").json()
    assert [c["id"] for c in limited] == [earlier_due.pk, later_due.pk, new_a.pk]


def test_a_card_due_this_very_moment_is_due(user, hot_path):
    from study.selectors.cards import cards_due_json, cards_due_list

    now = timezone.now()
    card = MemoCardFactory(user=user)
    CardProgressFactory(card=card, review_stage=1, due_at=now)
    later = MemoCardFactory(user=user)
    CardProgressFactory(card=later, review_stage=1, due_at=now + timedelta(microseconds=1))
    if hot_path == "postgresql":
        import json

        assert [c["id"] for c in json.loads(cards_due_json(user=user, now=now))] == [card.pk]
    else:
        assert [c["id"] for c in cards_due_list(user=user, now=now)] == [card.pk]


def test_rating_moves_a_card_out_of_the_due_list(api_client, user):
    card = MemoCardFactory(user=user)
    assert [c["id"] for c in api_client.get(f"{URL}/due").json()] == [card.pk]
    rate(api_client, card, "암")
    assert api_client.get(f"{URL}/due").json() == []


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "limit=-5"])
def test_due_bad_limit_is_400(api_client, query):
    assert api_client.get(f"{URL}/due?{query}").status_code == 400


def test_due_limit_is_clamped_to_200(api_client, user):
    MemoCard.objects.bulk_create(
        [MemoCard(user=user, cue=f"c{i}", fact=f"f{i}", dedup_hash=f"{i:064}", reviewed_at=timezone.now())
         for i in range(205)]
    )
    assert len(api_client.get(f"{URL}/due?limit=100000").json()) == 200


@pytest.mark.parametrize("n", [1, 200])
def test_due_query_count_is_constant(api_client, user, django_assert_max_num_queries, hot_path, n):
    now = timezone.now()
    for i in range(n):
        card = MemoCardFactory(user=user)
        CardEvidenceFactory(card=card)
        if i % 2:
            CardProgressFactory(card=card, review_stage=1, due_at=now - timedelta(minutes=i))
    # token auth (1) + the body (1); the twin: + due cards (1) + new cards, when places are left (1) + evidence (1)
    with django_assert_max_num_queries(2 if hot_path == "postgresql" else 4):
        response = api_client.get(f"{URL}/due?limit=200")
    assert len(response.json()) == n
    assert all(len(c["evidence"]) == 1 for c in response.json())


@pytest.mark.parametrize("prior", [False, True])
def test_rate_query_count(api_client, user, prior, hot_path):
    """token (1), card lock (1), progress read (1), progress write (1), outbox row (1): on either path."""
    card = MemoCardFactory(user=user)
    if prior:
        CardProgressFactory(user=user, card=card, review_stage=1, due_at=timezone.now())
    with CaptureQueriesContext(connection) as queries:
        response = rate(api_client, card, "correct")
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().startswith(("SAVEPOINT",
                                                                                                   "RELEASE"))]
    assert len(statements) == 5, statements
    # the fixed statements on the fast path, the ORM's (quoted names) on the twin
    assert ('"study_memocard"' in statements[1]) is (hot_path == "python")
    assert response.status_code == 200
    assert response.json()["review_stage"] == (2 if prior else 0)


def test_a_progress_row_inserted_without_a_rating_key_gets_an_empty_one(user):
    """The version before study/0013 inserts progress rows without the column while `migrate` runs beside it."""
    card = MemoCardFactory(user=user)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO study_cardprogress (created_at, updated_at, user_id, card_id, last_outcome,"
                       " last_reviewed_at, review_stage, due_at) VALUES (%s, %s, %s, %s, 'wrong', %s, 0, %s)",
                       [now, now, user.pk, card.pk, now, now])
    assert CardProgress.objects.get(card=card).last_rating_key == ""


def test_a_malformed_key_on_a_card_that_is_not_yours_is_404(api_client, other_user):
    card = MemoCardFactory(user=other_user)
    response = api_client.post(f"{URL}/{card.pk}/rate", {"outcome": "암"}, format="json",
                               headers={"Idempotency-Key": "two words"})
    assert response.status_code == 404


def test_more_cards_due_than_the_limit_gives_the_most_overdue(api_client, user):
    """The limit's cut must keep the most overdue: picked in another order and then sorted, the page still looked
    ordered (the other tests never had more due cards than the limit)."""
    now = timezone.now()
    cards = MemoCardFactory.create_batch(3, user=user)
    for card, hours in zip(cards, (1, 3, 2), strict=True):
        CardProgressFactory(card=card, review_stage=1, due_at=now - timedelta(hours=hours), last_outcome="wrong")

    response = api_client.get("/api/study-cards/due?limit=2")

    assert [card["id"] for card in response.json()] == [cards[1].pk, cards[2].pk]
