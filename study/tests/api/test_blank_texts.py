"""Texts that may not be blank are not given by invisible characters only: they showed as nothing, and every fact
of that kind was a duplicate of the others (the dedup check drops them)."""

import pytest

from study.models import MemoCard, Question, StudyTopic
from study.tests.factories import MemoCardFactory, StudyTopicFactory

pytestmark = pytest.mark.django_db

INVISIBLE = ["\u200b", "\ufeff", "\u3164", "\uffa0", " \u200b\u2060 ", "\u115f\u1160"]


def refused(response, field: str) -> bool:
    body = response.json()
    return (response.status_code, body["error_code"]) == (400, "invalid") and field in str(body["errors"])


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_topic_name_of_invisible_characters_is_blank(api_client, text):
    assert refused(api_client.post("/api/study-topics", {"name": text}, format="json"), "name")
    assert not StudyTopic.objects.exists()


@pytest.mark.parametrize("text", INVISIBLE)
@pytest.mark.parametrize("field", ["cue", "fact"])
def test_a_card_cue_or_fact_of_invisible_characters_is_blank(api_client, user, text, field):
    body = {"format": "qa", "cue": "주성분?", "fact": "메탄", field: text}
    assert refused(api_client.post("/api/study-cards", body, format="json"), field)
    card = MemoCardFactory(user=user, cue="주성분?", fact="메탄")
    assert refused(api_client.patch(f"/api/study-cards/{card.pk}", {field: text}, format="json"), field)
    card.refresh_from_db()
    assert (card.cue, card.fact) == ("주성분?", "메탄")
    assert MemoCard.objects.count() == 1


@pytest.mark.parametrize("field", ["subject", "question_text", "choices"])
def test_a_question_text_subject_or_choice_of_invisible_characters_is_blank(api_client, user, field):
    topic = StudyTopicFactory(user=user)
    body = {"study_topic_id": topic.pk, "subject": "가스일반", "question_text": "LNG의 주성분은?",
            "choices": ["메탄", "에탄"], "correct_choice": 1}
    body[field] = ["메탄", "\u200b"] if field == "choices" else "\ufeff"
    assert refused(api_client.post("/api/study-questions", body, format="json"), field)
    assert not Question.objects.exists()


def test_visible_text_with_invisible_characters_in_it_is_kept_as_sent(api_client):
    """Only a text of nothing else is blank; a fact pasted with a zero-width space is still a fact."""
    response = api_client.post("/api/study-cards", {"format": "qa", "cue": "주성분?", "fact": "메탄\u200b"},
                               format="json")
    assert response.status_code == 201 and response.json()["fact"] == "메탄\u200b"


def test_the_admins_topic_form_takes_invisible_characters_for_no_name(admin_client, user):
    response = admin_client.post("/admin/study/studytopic/add/", {"user": user.pk, "name": "\u200b", "study_type": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["name"] == ["This field is required."]
    assert not StudyTopic.objects.exists()


def test_the_admins_card_forms_take_invisible_characters_for_no_text(admin_client, user):
    """The change form and the review queue's edit saved a cue or fact of a zero-width space, which the API
    refuses as blank."""
    from django.urls import reverse

    card = MemoCardFactory(user=user, cue="주성분?", fact="메탄", needs_review=True)
    change = reverse("admin:study_memocard_change", args=[card.pk])
    response = admin_client.post(change, {"cue": "주성분?", "fact": "\u200b", "cloze_text": "", "needs_review": "on",
                                          "evidence-TOTAL_FORMS": "0", "evidence-INITIAL_FORMS": "0",
                                          "evidence-MIN_NUM_FORMS": "0", "evidence-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["fact"] == ["This field is required."]
    queue = admin_client.post(reverse("admin:study_memocard_review_action"), {
        "action": "edit", "card_id": card.pk, "cue": "\u3164", "fact": "\ufeff", "cloze_text": ""}, follow=True)
    assert any("was not saved" in str(message) for message in queue.context["messages"])
    card.refresh_from_db()
    assert (card.cue, card.fact, card.needs_review) == ("주성분?", "메탄", True)
