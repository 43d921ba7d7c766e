"""Two deletes of one soft-deletable row at once: the first 204, the second 404, and deleted_at is the first's;
approving or flagging a card while it is deleted: 404, and the deleted card is left alone.

The first delete (through its service) holds its transaction open until the API's delete waits on its row lock;
that one read the row while it was still live, so it used to soft-delete it again (204, deleted_at moved, its
publish requests recorded twice), and a card's approve / flag wrote to the deleted card (200). The services now
write only to a row that is still live.
"""


import pytest

from study.models import Document, MemoCard, Question, StudyTopic
from study.services.cards import card_approve, card_delete, card_flag, card_view
from study.services.documents import document_delete
from study.services.questions import question_delete
from study.services.topics import topic_delete
from study.tests import factories as f
from studyserver.testing import while_holding

# kind: (model, API path, a live row of `user`, the service's soft delete of a loaded row)
KINDS = {
    "topic": (StudyTopic, "/api/study-topics", lambda user: f.StudyTopicFactory(user=user),
              lambda row: topic_delete(topic=row)),
    "question": (Question, "/api/study-questions", lambda user: f.QuestionFactory(study_topic__user=user),
                 lambda row: question_delete(question=row)),
    "card": (MemoCard, "/api/study-cards", lambda user: f.MemoCardFactory(user=user),
             lambda row: card_delete(card=row)),
    "document": (Document, "/api/documents", lambda user: f.DocumentFactory(user=user),
                 lambda row: document_delete(document=row)),
}


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", KINDS)
def test_a_delete_waiting_on_another_delete_is_404_and_keeps_its_time(client_for, kind):
    model, url, make, delete = KINDS[kind]
    user = f.UserFactory()
    row = make(user)
    client = client_for(user)
    assert client.get(f"{url}/{row.pk}").status_code == 200  # live when the second delete reads it

    first: list = []

    def delete_first() -> None:
        delete(model.objects.get(pk=row.pk))
        first.append(model.objects.get(pk=row.pk).deleted_at)

    response = while_holding(delete_first, then=lambda: client.delete(f"{url}/{row.pk}"))

    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "not_found"
    assert first[0] is not None
    assert model.objects.get(pk=row.pk).deleted_at == first[0]  # the first delete's time, not moved


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_deleting_a_copy_read_before_the_row_was_deleted_changes_nothing(kind):
    model, _url, make, delete = KINDS[kind]
    row = make(f.UserFactory())
    read_while_live = model.objects.get(pk=row.pk)
    assert delete(model.objects.get(pk=row.pk)) is True
    deleted_at = model.objects.get(pk=row.pk).deleted_at

    assert delete(read_while_live) is False
    assert model.objects.get(pk=row.pk).deleted_at == deleted_at


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("needs_review", [True, False])
def test_a_review_patch_waiting_on_the_cards_delete_is_404_and_changes_nothing(client_for, needs_review):
    """Approve / flag back read the card while it was live; they used to write its review fields anyway (200)."""
    user = f.UserFactory()
    card = f.MemoCardFactory(user=user, needs_review=not needs_review)
    client = client_for(user)

    response = while_holding(
        lambda: card_delete(card=MemoCard.objects.get(pk=card.pk)),
        then=lambda: client.patch(f"/api/study-cards/{card.pk}", {"needs_review": needs_review}, format="json"),
    )

    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "not_found"
    deleted = MemoCard.objects.get(pk=card.pk)
    assert deleted.deleted_at is not None
    assert deleted.needs_review is not needs_review and deleted.flagged_by == ""


@pytest.mark.django_db
@pytest.mark.parametrize("review", [card_approve, card_flag])
def test_reviewing_a_copy_read_before_the_card_was_deleted_changes_nothing(review):
    card = f.MemoCardFactory(needs_review=review is card_approve)
    read_while_live = MemoCard.objects.get(pk=card.pk)
    assert card_delete(card=MemoCard.objects.get(pk=card.pk)) is True

    assert review(card=read_while_live) is False
    deleted = MemoCard.objects.get(pk=card.pk)
    assert (deleted.needs_review, deleted.flagged_by) == (review is card_approve, "")


@pytest.mark.django_db
def test_viewing_a_copy_read_before_the_card_was_deleted_counts_nothing():
    card = f.MemoCardFactory(needs_review=False)
    read_while_live = MemoCard.objects.get(pk=card.pk)
    assert card_delete(card=MemoCard.objects.get(pk=card.pk)) is True

    assert card_view(card=read_while_live) is False
    deleted = MemoCard.objects.get(pk=card.pk)
    assert (deleted.view_count, deleted.last_viewed_at) == (0, None)
    assert card_view(card=f.MemoCardFactory(needs_review=False)) is True
