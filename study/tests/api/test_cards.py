"""Card API: create, groups, review (approve / batch / flag / edit / delete), dedup, ownership, outbox."""

import functools
import threading
import unicodedata
from urllib.parse import urlencode

import pytest
from django.db import transaction
from django.utils import timezone

from publishing.models import PublishOutbox
from study.models import MemoCard
from study.services import cards as card_services
from study.services.cards import card_candidate_create, card_create
from study.tests.factories import (
    CardEvidenceFactory,
    MemoCardFactory,
    QuestionFactory,
    StudyTopicFactory,
    UserFactory,
)
from study.textnorm import card_dedup_hash
from studyserver.testing import hold_until_another_waits, run_concurrently

URL = "/api/study-cards"

pytestmark = pytest.mark.django_db


def outbox(kind: str = "study_card") -> list[int]:
    return list(PublishOutbox.objects.filter(kind=kind).order_by("id").values_list("source_id", flat=True))


def candidate(question, fact: str, card_format: str = "qa", **kwargs) -> MemoCard:
    card = card_candidate_create(question=question, card_format=card_format, cue=f"{fact}?", fact=fact, **kwargs)
    assert card is not None
    return card


# --- create -------------------------------------------------------------------------------------


def test_create_manual_card_is_approved_and_published(api_client, user):
    response = api_client.post(
        URL, {"format": "qa", "cue": "LNG 저장 온도는?", "fact": "영하 162도", "material": "가스 물성"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["source_kind"] == "manual"
    assert body["needs_review"] is False
    assert body["evidence"] == []
    assert body["review_stage"] is None
    card = MemoCard.objects.get(pk=body["id"])
    assert card.user == user
    assert card.extra == {"material": "가스 물성"}
    assert card.dedup_hash == card_dedup_hash(source_question_id=None, card_format="qa", fact="영하 162도")
    assert outbox() == [card.pk]


def test_material_is_stored_nfc_and_groups_its_spellings_together(api_client, user):
    """A material sent decomposed (NFD, from macOS or iOS) is the material typed in NFC: one review group."""
    for fact, spelling in (("영하 162도", "NFD"), ("메탄", "NFC")):
        material = unicodedata.normalize(spelling, "가스 물성")
        response = api_client.post(URL, {"format": "qa", "cue": "?", "fact": fact, "material": material}, format="json")
        assert response.status_code == 201, response.content
    assert [card.extra for card in MemoCard.objects.filter(user=user)] == [{"material": "가스 물성"}] * 2
    assert [(g["question_text"], len(g["cards"])) for g in api_client.get(URL).json()] == [("[자료] 가스 물성", 2)]
    # NFC makes "\ufb2c" three characters: the limit counts what is stored
    response = api_client.post(URL, {"format": "qa", "cue": "?", "fact": "x", "material": "\ufb2c" * 200},
                               format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["material"]


def test_create_with_trailing_slash_and_topic(api_client, user):
    topic = StudyTopicFactory(user=user)
    response = api_client.post(
        f"{URL}/",
        {"format": "cloze", "cue": "c", "fact": "메탄", "cloze_text": "LNG 주성분은 ___", "study_topic_id": topic.pk},
        format="json",
    )
    assert response.status_code == 201
    assert MemoCard.objects.get(pk=response.json()["id"]).study_topic == topic


def test_create_with_foreign_topic_is_404(api_client, other_user):
    topic = StudyTopicFactory(user=other_user)
    body = {"format": "qa", "cue": "c", "fact": "f", "study_topic_id": topic.pk}
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 404
    assert not MemoCard.objects.exists()


def test_create_duplicate_after_normalisation_is_409(api_client):
    assert api_client.post(URL, {"format": "qa", "cue": "a", "fact": "Methane"}, format="json").status_code == 201
    response = api_client.post(URL, {"format": "qa", "cue": "b", "fact": "  ＭＥＴＨＡＮＥ. "}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "duplicate_card"
    # a fact pasted with an invisible character is the same fact to whoever reads it
    response = api_client.post(URL, {"format": "qa", "cue": "b", "fact": "\ufeffMeth\u00adane\u200b"}, format="json")
    assert (response.status_code, response.json()["error_code"]) == (409, "duplicate_card")
    # another format is another card; another user may hold the same fact
    assert api_client.post(URL, {"format": "cloze", "cue": "a", "fact": "Methane"}, format="json").status_code == 201


def test_same_fact_for_another_user_is_fine(api_client, other_client):
    assert api_client.post(URL, {"format": "qa", "cue": "a", "fact": "메탄"}, format="json").status_code == 201
    assert other_client.post(URL, {"format": "qa", "cue": "a", "fact": "메탄"}, format="json").status_code == 201


def test_deleted_card_frees_its_fact(api_client, user):
    card = MemoCardFactory(user=user, fact="메탄")
    assert api_client.delete(f"{URL}/{card.pk}").status_code == 204
    assert api_client.post(URL, {"format": "qa", "cue": "a", "fact": "메탄"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"format": "essay", "cue": "a", "fact": "b"},
        {"format": "qa", "cue": "", "fact": "b"},
        {"format": "qa", "cue": "a"},
        {"format": "qa", "cue": ["x"], "fact": {"a": 1}},
        {"format": "qa", "cue": "a\x00", "fact": "b"},
        {"format": "qa", "cue": "a", "fact": "b", "study_topic_id": 10**30},
        {"format": "qa", "cue": "a", "fact": "b", "study_topic_id": "abc"},
    ],
)
def test_create_invalid_bodies_are_400(api_client, body):
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"


def test_bad_json_and_emoji(api_client):
    response = api_client.post(URL, data="{not json", content_type="application/json")
    assert response.status_code == 400
    response = api_client.post(URL, {"format": "qa", "cue": "🔥 불꽃", "fact": "🔥🔥"}, format="json")
    assert response.status_code == 201


def test_anonymous_is_401(anon_client):
    assert anon_client.get(URL).status_code == 401
    assert anon_client.post(URL, {"format": "qa", "cue": "a", "fact": "b"}, format="json").status_code == 401


# --- groups -------------------------------------------------------------------------------------


def test_groups_by_question_and_material_in_first_appearance_order(api_client, user):
    topic = StudyTopicFactory(user=user)
    q1 = QuestionFactory(study_topic=topic, question_text="LNG의 주성분은?", correct_choice=1)
    q2 = QuestionFactory(study_topic=topic, question_text="LPG의 주성분은?", correct_choice=3)
    a = candidate(q1, "메탄", evidence=[{"source_type": "question", "source_id": q1.pk, "snippet": "LNG는 메탄"}])
    m1 = card_create(user=user, card_format="qa", cue="x", fact="m1", material="가스 물성")
    b = candidate(q2, "프로판")
    m2 = card_create(user=user, card_format="qa", cue="x", fact="m2")
    c = candidate(q1, "영하 162도", card_format="cloze", cloze_text="___에서 액화")
    m3 = card_create(user=user, card_format="qa", cue="x", fact="m3", material="가스 물성")
    MemoCardFactory(user=UserFactory(), fact="someone else's")

    response = api_client.get(URL)
    assert response.status_code == 200
    groups = response.json()
    assert [(g["source_question_id"], g["question_text"], g["correct_choice"]) for g in groups] == [
        (q1.pk, "LNG의 주성분은?", 1),
        (None, "[자료] 가스 물성", None),
        (q2.pk, "LPG의 주성분은?", 3),
        (None, "직접 추가 카드", None),
    ]
    assert [[c["id"] for c in g["cards"]] for g in groups] == [[a.pk, c.pk], [m1.pk, m3.pk], [b.pk], [m2.pk]]
    first = groups[0]["cards"][0]
    assert first["evidence"] == [{"source_type": "question", "source_id": q1.pk, "snippet": "LNG는 메탄"}]
    assert first["needs_review"] is True
    assert first["source_kind"] == "question"
    assert first["review_stage"] is None
    assert set(first) == {"id", "source_kind", "format", "cue", "fact", "cloze_text", "needs_review", "flagged_by",
                          "evidence", "review_stage"}


def test_a_material_is_text_as_typed_in_its_group_and_the_deck(api_client, user):
    """Materials that read as JSON are still the text typed: on SQLite the list decoded them ("3.10" and "3.1" became
    one group "[자료] 3.1", "null" joined the cards without material, "true" showed as "True")."""
    materials = ["3.10", "3.1", "null", "true", "1e3"]
    cards = [card_create(user=user, card_format="qa", cue="?", fact=f"fact {m}", material=m) for m in materials]
    plain = card_create(user=user, card_format="qa", cue="?", fact="no material")

    groups = api_client.get(URL).json()

    assert [(g["question_text"], [c["id"] for c in g["cards"]]) for g in groups] == [
        *((f"[자료] {m}", [card.pk]) for m, card in zip(materials, cards, strict=True)),
        ("직접 추가 카드", [plain.pk]),
    ]
    for material, card in zip(materials, cards, strict=True):
        deck = api_client.get(f"{URL}/deck", {"material": material}).json()
        assert [c["id"] for c in deck] == [card.pk], material


def test_groups_filters_and_limit(api_client, user):
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    pending_qa = candidate(question, "메탄")
    pending_cloze = candidate(question, "에탄", card_format="cloze")
    approved = card_create(user=user, card_format="qa", cue="x", fact="approved")

    def ids(query: str) -> list[int]:
        response = api_client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return [c["id"] for g in response.json() for c in g["cards"]]

    assert ids("needs_review=true") == [pending_qa.pk, pending_cloze.pk]
    assert ids("needs_review=false") == [approved.pk]
    assert ids("needs_review=true&format=cloze") == [pending_cloze.pk]
    assert ids("limit=1") == [pending_qa.pk]
    assert ids("limit=999999") == [pending_qa.pk, pending_cloze.pk, approved.pk]


@pytest.mark.parametrize(
    "query",
    ["needs_review=maybe", "format=essay", "limit=0", "limit=-1", "limit=abc", f"limit={'9' * 5000}",
     "limit=%EF%BC%91", "limit=5.0", "limit=+5", "limit=%205"],  # ASCII digits only, as the paginator reads them
)
def test_groups_bad_query_is_400(api_client, query):
    response = api_client.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"


@pytest.mark.parametrize("n", [1, 200])
def test_groups_query_count_is_constant(api_client, user, django_assert_max_num_queries, hot_path, n):
    topic = StudyTopicFactory(user=user)
    questions = QuestionFactory.create_batch(5, study_topic=topic)
    for i in range(n):
        if i % 4 == 3:  # manual cards, grouped per material
            card = MemoCardFactory(user=user, study_topic=topic, extra={"material": f"자료 {i % 3}"}, needs_review=True)
        else:
            card = MemoCardFactory(
                user=user, source_question=questions[i % 5], source_kind="question", needs_review=True
            )
        CardEvidenceFactory(card=card, snippet=f"근거 {i}")
    # token auth (1) + the body (1); the twin: + cards with their question (1) + evidence (1)
    with django_assert_max_num_queries(2 if hot_path == "postgresql" else 3):
        response = api_client.get(URL)
    assert sum(len(g["cards"]) for g in response.json()) == n
    assert all(len(c["evidence"]) == 1 for g in response.json() for c in g["cards"])


@pytest.mark.parametrize("n", [1, 100])
def test_needs_review_count_query_count_is_constant(api_client, user, django_assert_max_num_queries, n):
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    for i in range(n):
        card = MemoCardFactory(user=user, source_question=question, source_kind="question", needs_review=i % 3 != 0)
        CardEvidenceFactory(card=card)
    # token auth (1) + the count (1)
    with django_assert_max_num_queries(2):
        body = api_client.get(f"{URL}/needs-review/count").json()
    assert body == {"count": sum(1 for i in range(n) if i % 3 != 0)}


# --- count and approve-batch --------------------------------------------------------------------


def test_needs_review_count(api_client, user, other_user):
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    candidate(question, "a")
    candidate(question, "b")
    deleted = candidate(question, "c")
    deleted.deleted_at = deleted.created_at
    deleted.save()
    MemoCardFactory(user=user)
    MemoCardFactory(user=other_user, needs_review=True)
    for path in (f"{URL}/needs-review/count", f"{URL}/needs-review/count/"):
        response = api_client.get(path)
        assert response.status_code == 200
        assert response.json() == {"count": 2}


def test_approve_batch_only_that_question_and_user(api_client, user, other_user):
    topic = StudyTopicFactory(user=user)
    q1, q2 = QuestionFactory(study_topic=topic), QuestionFactory(study_topic=topic)
    a, b = candidate(q1, "a"), candidate(q1, "b")
    other_question = candidate(q2, "c")
    # Another user's card cannot point at this user's question (study_memocard_source_question_same_owner_fk):
    # theirs is of their own question.
    foreign = MemoCardFactory(
        source_question=QuestionFactory(study_topic=StudyTopicFactory(user=other_user)),
        source_kind="question",
        needs_review=True,
    )
    PublishOutbox.objects.all().delete()

    response = api_client.post(f"{URL}/approve-batch", {"source_question_id": q1.pk}, format="json")
    assert response.status_code == 200
    assert response.json() == {"approved": 2}
    assert set(MemoCard.objects.filter(needs_review=False).values_list("id", flat=True)) == {a.pk, b.pk}
    other_question.refresh_from_db()
    foreign.refresh_from_db()
    assert other_question.needs_review and foreign.needs_review
    assert sorted(outbox()) == sorted([a.pk, b.pk])
    # again: nothing left to approve, nothing recorded
    assert api_client.post(f"{URL}/approve-batch", {"source_question_id": q1.pk}, format="json").json() == {
        "approved": 0
    }
    assert len(outbox()) == 2


def test_approve_batch_of_a_question_that_is_not_the_users_is_404(api_client, user, other_user):
    theirs = QuestionFactory(study_topic=StudyTopicFactory(user=other_user))
    candidate(theirs, "남의 카드")
    for question_id in (theirs.pk, theirs.pk + 10_000):
        response = api_client.post(f"{URL}/approve-batch", {"source_question_id": question_id}, format="json")
        assert response.status_code == 404 and response.json()["error_code"] == "not_found"
    assert MemoCard.objects.get(source_question=theirs).needs_review


def test_approve_batch_still_approves_the_cards_of_a_deleted_question(api_client, user):
    """Deleting a question keeps its cards; the review queue still groups them under it."""
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    card = candidate(question, "남은 카드")
    assert api_client.delete(f"/api/study-questions/{question.pk}").status_code == 204
    response = api_client.post(f"{URL}/approve-batch", {"source_question_id": question.pk}, format="json")
    assert response.status_code == 200 and response.json() == {"approved": 1}
    card.refresh_from_db()
    assert not card.needs_review
    again = api_client.post(f"{URL}/approve-batch", {"source_question_id": question.pk}, format="json")
    assert again.status_code == 200 and again.json() == {"approved": 0}  # the user's own question: nothing left


@pytest.mark.parametrize("body", [{}, {"source_question_id": "x"}, {"source_question_id": 10**30}])
def test_approve_batch_needs_a_question_id(api_client, body):
    response = api_client.post(f"{URL}/approve-batch", body, format="json")
    assert response.status_code == 400


def test_there_is_no_approve_all(api_client):
    assert api_client.post(f"{URL}/approve-all", {}, format="json").status_code == 404


# --- patch --------------------------------------------------------------------------------------


def test_edit_approves_recomputes_hash_and_publishes(api_client, user):
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    card = candidate(question, "메탄")
    PublishOutbox.objects.all().delete()
    response = api_client.patch(f"{URL}/{card.pk}", {"fact": "메탄 (CH4)", "cue": "주성분?"}, format="json")
    assert response.status_code == 200
    assert response.json()["needs_review"] is False
    assert response.json()["fact"] == "메탄 (CH4)"
    card.refresh_from_db()
    assert card.cue == "주성분?"
    assert card.reviewed_at is not None
    assert card.dedup_hash == card_dedup_hash(source_question_id=question.pk, card_format="qa", fact="메탄 (CH4)")
    assert outbox() == [card.pk]


def test_edit_to_a_duplicate_is_409_and_changes_nothing(api_client, user):
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    candidate(question, "메탄")
    card = candidate(question, "에탄")
    PublishOutbox.objects.all().delete()
    response = api_client.patch(f"{URL}/{card.pk}", {"fact": "메탄!"}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "duplicate_card"
    card.refresh_from_db()
    assert card.fact == "에탄" and card.needs_review
    assert outbox() == []


def test_flag_back_and_approve(api_client, user):
    card = MemoCardFactory(user=user)
    response = api_client.patch(f"{URL}/{card.pk}/", {"needs_review": True}, format="json")
    assert response.status_code == 200
    assert response.json()["needs_review"] is True
    assert response.json()["flagged_by"] == "user"
    card.refresh_from_db()
    assert card.flagged_at is not None

    response = api_client.patch(f"{URL}/{card.pk}", {"needs_review": False}, format="json")
    assert response.status_code == 200
    card.refresh_from_db()
    assert (card.needs_review, card.flagged_by, card.flagged_at) == (False, "", None)
    assert outbox() == [card.pk, card.pk]


def test_a_content_edit_approves_even_when_the_body_carries_needs_review_true(api_client, user):
    """Apps send the whole card back, including the needs_review they loaded: the edit still approves."""
    card = MemoCardFactory(user=user, needs_review=True)
    response = api_client.patch(f"{URL}/{card.pk}", {"fact": "고친 사실", "needs_review": True}, format="json")
    assert response.status_code == 200
    assert response.json()["needs_review"] is False and response.json()["fact"] == "고친 사실"
    card.refresh_from_db()
    assert not card.needs_review and card.reviewed_at is not None


@pytest.mark.parametrize("needs_review", [True, False])
def test_the_whole_card_sent_back_unchanged_is_no_edit(api_client, user, needs_review):
    """An app flags a card by sending it back whole with needs_review true: its unchanged text had counted as an
    edit, which approved the card (the flag lost). Echoing a waiting card's text had approved it unreviewed."""
    approved = MemoCardFactory(user=user, fact="메탄", cloze_text="")
    waiting = MemoCardFactory(user=user, fact="에탄", needs_review=True)  # a machine-made card, never reviewed
    PublishOutbox.objects.all().delete()
    for card in (approved, waiting):
        body = {"cue": card.cue, "fact": card.fact, "cloze_text": card.cloze_text, "needs_review": needs_review}
        response = api_client.patch(f"{URL}/{card.pk}", body, format="json")
        assert response.status_code == 200
        assert response.json()["needs_review"] is needs_review
    for card in (approved, waiting):
        card.refresh_from_db()
    if needs_review:  # the approved card is flagged by the user; the waiting one stays waiting, unreviewed
        assert (approved.needs_review, approved.flagged_by) == (True, "user")
        assert (waiting.needs_review, waiting.reviewed_at) == (True, None)
        assert outbox() == [approved.pk]
    else:  # the waiting card is approved (needs_review false says so); the approved one stays as it was
        assert not waiting.needs_review and waiting.reviewed_at is not None
        assert (approved.needs_review, approved.flagged_by) == (False, "")
        assert outbox() == [waiting.pk]


@pytest.mark.parametrize("body_format", ["multipart", "urlencoded"])
def test_a_form_without_needs_review_neither_approves_nor_flags(api_client, user, body_format):
    """Form bodies are accepted as JSON is. A form field left out is not sent: DRF read a missing needs_review as an
    unticked checkbox, false, so echoing a waiting card's text (or an empty form) approved it unreviewed."""
    waiting = MemoCardFactory(user=user, needs_review=True)
    PublishOutbox.objects.all().delete()

    def patch(fields: dict):
        if body_format == "multipart":
            return api_client.patch(f"{URL}/{waiting.pk}", fields, format="multipart")
        return api_client.patch(f"{URL}/{waiting.pk}", urlencode(fields),
                                content_type="application/x-www-form-urlencoded")

    echoed = patch({"cue": waiting.cue})
    assert echoed.status_code == 200 and echoed.json()["needs_review"] is True
    empty = patch({})
    assert empty.status_code == 400 and empty.json()["error_code"] == "invalid"
    waiting.refresh_from_db()
    assert (waiting.needs_review, waiting.reviewed_at) == (True, None)
    assert outbox() == []
    assert patch({"needs_review": "false"}).json()["needs_review"] is False  # sent, it still approves


def test_text_sent_back_unchanged_beside_an_edit_is_kept_and_the_edit_approves(api_client, user):
    card = MemoCardFactory(user=user, cue="주성분?", fact="메탄", needs_review=True)
    response = api_client.patch(f"{URL}/{card.pk}", {"cue": "주성분?", "fact": "메탄 (CH4)"}, format="json")
    assert response.json()["needs_review"] is False
    card.refresh_from_db()
    assert (card.cue, card.fact, card.needs_review) == ("주성분?", "메탄 (CH4)", False)
    assert api_client.patch(f"{URL}/{card.pk}", {"fact": "메탄 (CH4)"}, format="json").json()["needs_review"] is False


def test_edit_clears_a_user_flag(api_client, user):
    card = MemoCardFactory(user=user, needs_review=True, flagged_by="user")
    response = api_client.patch(f"{URL}/{card.pk}", {"cloze_text": "___ 도"}, format="json")
    assert response.status_code == 200
    assert response.json()["flagged_by"] == ""
    assert response.json()["needs_review"] is False


@pytest.mark.parametrize("body", [{}, {"needs_review": "perhaps"}, {"fact": ""}, {"cue": None}])
def test_patch_invalid_is_400(api_client, user, body):
    card = MemoCardFactory(user=user)
    assert api_client.patch(f"{URL}/{card.pk}", body, format="json").status_code == 400


# --- delete, ownership, odd ids -----------------------------------------------------------------


def test_delete_is_soft_and_published(api_client, user):
    card = MemoCardFactory(user=user)
    assert api_client.delete(f"{URL}/{card.pk}").status_code == 204
    card.refresh_from_db()
    assert card.deleted_at is not None
    assert outbox() == [card.pk]
    assert api_client.delete(f"{URL}/{card.pk}").status_code == 404
    assert api_client.patch(f"{URL}/{card.pk}", {"needs_review": True}, format="json").status_code == 404
    assert api_client.get(URL).json() == []


def test_other_users_card_is_404_everywhere(api_client, other_user):
    card = MemoCardFactory(user=other_user)
    assert api_client.get(f"{URL}/{card.pk}").status_code == 404
    assert api_client.patch(f"{URL}/{card.pk}", {"fact": "mine"}, format="json").status_code == 404
    assert api_client.delete(f"{URL}/{card.pk}").status_code == 404
    assert api_client.post(f"{URL}/{card.pk}/rate", {"outcome": "암"}, format="json").status_code == 404
    assert api_client.post(f"{URL}/{card.pk}/view").status_code == 404
    card.refresh_from_db()
    assert card.deleted_at is None and card.fact != "mine" and card.view_count == 0
    assert not PublishOutbox.objects.exists()


@pytest.mark.parametrize("card_id", ["abc", "1.5", "-1", "99999999999999999999999", "0"])
def test_odd_ids_are_404(api_client, card_id):
    response = api_client.patch(f"{URL}/{card_id}", {"needs_review": True}, format="json")
    assert response.status_code == 404
    assert api_client.post(f"{URL}/{card_id}/rate", {"outcome": "암"}, format="json").status_code == 404


# --- dedup under a race -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_fact_give_one_card_and_one_409(client_for):
    owner = UserFactory()
    clients = [client_for(owner), client_for(owner)]

    def create(client) -> int:
        return client.post(URL, {"format": "qa", "cue": "c", "fact": "동시에 만든 사실"}, format="json").status_code

    statuses = run_concurrently(*(functools.partial(create, client) for client in clients))
    assert sorted(statuses) == [201, 409]
    assert MemoCard.objects.filter(user=owner).count() == 1


def test_candidate_create_returns_none_on_duplicate(user):
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    first = card_candidate_create(question=question, card_format="qa", cue="q", fact="메탄",
                                  evidence=[{"source_type": "explanation", "snippet": "s"}])
    assert first is not None
    assert first.needs_review and first.source_kind == "question"
    assert first.study_topic_id == question.study_topic_id
    assert first.evidence.count() == 1
    assert card_candidate_create(question=question, card_format="qa", cue="q2", fact=" 메탄. ") is None
    assert MemoCard.objects.count() == 1
    assert not PublishOutbox.objects.exists()


def test_list_and_due_bodies_are_the_serializer_body(api_client, user, hot_path):
    """Groups, due and deck build card bodies from plain rows; they must match what PATCH answers."""
    question = QuestionFactory(study_topic__user=user)
    card = candidate(question, "메탄", evidence=[{"source_type": "question", "source_id": question.id,
                                                  "snippet": "LNG의 주성분"}])
    card.flagged_by, card.flagged_at = "user", timezone.now()  # sent back to review by the learner
    card.save(update_fields=["flagged_by", "flagged_at"])

    pending = api_client.get("/api/study-cards?needs_review=true").json()[0]["cards"][0]
    approved = api_client.patch(f"/api/study-cards/{card.id}", {"needs_review": False}, format="json").json()
    due = api_client.get("/api/study-cards/due").json()[0]
    deck = api_client.get("/api/study-cards/deck").json()[0]

    assert pending == {**approved, "needs_review": True, "flagged_by": "user"}
    assert deck == approved
    assert due == {**approved, "review_stage": None}
    assert approved["evidence"] == [{"source_type": "question", "source_id": question.id, "snippet": "LNG의 주성분"}]


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_edits_of_different_fields_at_once_both_land():
    from study.services.cards import card_update

    card = MemoCardFactory(cue="old cue", fact="old fact")
    first_saved = threading.Event()

    def edit_cue() -> None:
        with transaction.atomic():
            card_update(card=MemoCard.objects.get(pk=card.pk), cue="new cue")
            first_saved.set()
            assert hold_until_another_waits()

    def edit_fact() -> None:
        stale = MemoCard.objects.get(pk=card.pk)  # read before the cue edit commits
        first_saved.wait(10)
        card_update(card=stale, fact="new fact")

    run_concurrently(edit_cue, edit_fact)
    card.refresh_from_db()
    assert (card.cue, card.fact) == ("new cue", "new fact")


@pytest.mark.parametrize(("query", "limit"), [({}, 600), ({"limit": "2000"}, 2000), ({"limit": "2001"}, 2000),
                                              ({"limit": "999999"}, 2000), ({"limit": "7"}, 7)])
def test_groups_read_600_cards_by_default_and_2000_at_most(query, limit):
    # (the lists above hold a few cards: they cannot show either figure)
    from study.api.card_serializers import GroupsQuery

    parsed = GroupsQuery(data=query)
    assert parsed.is_valid(), parsed.errors
    assert parsed.validated_data["limit"] == limit


@pytest.mark.parametrize("needs_review", [True, False])
def test_a_repeated_review_answers_the_card_and_changes_nothing(api_client, user, needs_review):
    """An app retries a PATCH whose answer it lost; the card is already so: 200 with it, no second publish, and a
    flag keeps who flagged it first and when."""
    card = MemoCardFactory(user=user, needs_review=not needs_review)
    first = api_client.patch(f"{URL}/{card.pk}", {"needs_review": needs_review}, format="json")
    assert first.status_code == 200
    card.refresh_from_db()
    before = (card.needs_review, card.flagged_by, card.flagged_at, card.reviewed_at, card.updated_at)

    again = api_client.patch(f"{URL}/{card.pk}", {"needs_review": needs_review}, format="json")

    assert again.status_code == 200
    assert again.json() == first.json()
    card.refresh_from_db()
    assert (card.needs_review, card.flagged_by, card.flagged_at, card.reviewed_at, card.updated_at) == before
    assert outbox() == [card.pk]


def test_a_review_of_a_card_deleted_meanwhile_is_404(api_client, user, monkeypatch):
    card = MemoCardFactory(user=user, needs_review=True)
    real_approve = card_services.card_approve

    def deleted_first(*, card):
        MemoCard.objects.filter(pk=card.pk).update(deleted_at=timezone.now())  # a concurrent delete committed
        return real_approve(card=card)

    monkeypatch.setattr(card_services, "card_approve", deleted_first)
    response = api_client.patch(f"{URL}/{card.pk}", {"needs_review": False}, format="json")

    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"
