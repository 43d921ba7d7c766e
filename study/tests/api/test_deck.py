"""The cram deck: least recently viewed approved cards, and counting views (no SR effect)."""

import unicodedata
from datetime import timedelta

import pytest
from django.utils import timezone

from publishing.models import PublishOutbox
from study.models import CardProgress
from study.tests.factories import CardEvidenceFactory, MemoCardFactory

URL = "/api/study-cards"

pytestmark = pytest.mark.django_db


def test_deck_never_viewed_first_then_oldest_view(api_client, user, other_user):
    now = timezone.now()
    recent = MemoCardFactory(user=user, last_viewed_at=now - timedelta(minutes=1), view_count=3)
    never_b = MemoCardFactory(user=user)
    old = MemoCardFactory(user=user, last_viewed_at=now - timedelta(days=3), view_count=1)
    never_a = MemoCardFactory(user=user)
    MemoCardFactory(user=user, needs_review=True)
    MemoCardFactory(user=user, deleted_at=now)
    MemoCardFactory(user=other_user)

    response = api_client.get(f"{URL}/deck")
    assert response.status_code == 200
    assert [c["id"] for c in response.json()] == [never_b.pk, never_a.pk, old.pk, recent.pk]
    assert all(c["review_stage"] is None for c in response.json())


def test_deck_filters(api_client, user):
    gas = MemoCardFactory(user=user, extra={"material": "가스 물성"})
    MemoCardFactory(user=user, extra={"material": "법규"})
    cloze = MemoCardFactory(user=user, format="cloze", extra={"material": "가스 물성"})
    assert [c["id"] for c in api_client.get(f"{URL}/deck", {"material": "가스 물성"}).json()] == [gas.pk, cloze.pk]
    assert [c["id"] for c in api_client.get(f"{URL}/deck/", {"format": "cloze"}).json()] == [cloze.pk]
    assert len(api_client.get(f"{URL}/deck", {"limit": 1}).json()) == 1


def test_deck_material_filter_takes_an_nfd_spelling(api_client, user):
    """Materials are stored NFC; an app on macOS or iOS may send the decomposed (NFD) spelling."""
    gas = MemoCardFactory(user=user, extra={"material": "가스 물성"})
    MemoCardFactory(user=user, extra={"material": "법규"})
    decomposed = unicodedata.normalize("NFD", "가스 물성")
    assert decomposed != "가스 물성"
    assert [c["id"] for c in api_client.get(f"{URL}/deck", {"material": decomposed}).json()] == [gas.pk]


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "format=essay", "limit=%EF%BC%92", "limit=2.0"])
def test_deck_bad_query_is_400(api_client, query):
    assert api_client.get(f"{URL}/deck?{query}").status_code == 400


def test_view_counts_and_reorders_without_sr_effect(api_client, user):
    first, second = MemoCardFactory(user=user), MemoCardFactory(user=user)
    response = api_client.post(f"{URL}/{first.pk}/view")
    assert response.status_code == 204
    api_client.post(f"{URL}/{first.pk}/view/")
    first.refresh_from_db()
    assert first.view_count == 2
    assert first.last_viewed_at is not None
    assert [c["id"] for c in api_client.get(f"{URL}/deck").json()] == [second.pk, first.pk]
    assert not CardProgress.objects.exists()
    assert not PublishOutbox.objects.exists()


def test_view_of_deleted_card_is_404(api_client, user):
    card = MemoCardFactory(user=user, deleted_at=timezone.now())
    assert api_client.post(f"{URL}/{card.pk}/view").status_code == 404


@pytest.mark.parametrize("flagged_by", ["", "user"])  # made and waiting, or sent back by the learner
def test_a_view_of_a_card_waiting_for_review_is_refused_and_counts_nothing(api_client, user, flagged_by):
    """The deck shows approved cards only: a view counted on a waiting card sorted it, once approved, behind the
    cards never viewed."""
    card = MemoCardFactory(user=user, needs_review=True, flagged_by=flagged_by)
    response = api_client.post(f"{URL}/{card.pk}/view")
    assert response.status_code == 400 and response.json()["error_code"] == "not_reviewed"
    card.refresh_from_db()
    assert (card.view_count, card.last_viewed_at) == (0, None)


@pytest.mark.parametrize("n", [1, 200])
def test_deck_query_count_is_constant(api_client, user, django_assert_max_num_queries, n):
    for _ in range(n):
        CardEvidenceFactory(card=MemoCardFactory(user=user))
    # token auth (1) + cards (1) + evidence (1); limit is clamped to 100
    with django_assert_max_num_queries(3):
        response = api_client.get(f"{URL}/deck?limit=500")
    assert len(response.json()) == min(n, 100)
    assert all(len(c["evidence"]) == 1 for c in response.json())
