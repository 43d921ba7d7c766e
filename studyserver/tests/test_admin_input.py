"""Bad input to the admin gets a form error, a message or the admin's "invalid lookup" page, never a 500 or a row
that later pages cannot show (found by probing every registered model admin; Django's own code gave the 500s).

The changelist and action checks walk the site's registry, so a newly registered model is covered too.
"""

import json
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db import models
from django.urls import reverse

from study.models import Question, QuestionProgress, StudySession
from study.tests.factories import CardProgressFactory, QuestionFactory, QuestionProgressFactory, StudySessionFactory

pytestmark = pytest.mark.django_db


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def char_filters(model, model_admin) -> list[str]:
    return [
        name for name in model_admin.list_filter
        if isinstance(name, str) and isinstance(model._meta.get_field(name.split("__")[0]), models.CharField)
    ]


def test_lookups_no_database_can_evaluate_are_the_invalid_lookup_page(admin_client):
    """`created_at__year=99999` (a ValueError in Django), a NUL in a text filter (DataError on PostgreSQL), an id
    beyond 64 bits (OverflowError on SQLite): the admin's "?e=1" page, as for any other bad lookup."""
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if any(f.name == "created_at" for f in model._meta.get_fields()):
            response = admin_client.get(f"{changelist(model)}?created_at__year=99999")
            assert response.status_code == 302 and response["Location"].endswith("?e=1"), model
            checked += 1
        # SQLite overflows on 2**63 (?e=1), PostgreSQL finds nothing (200); a token's key is no lookup at all (400)
        response = admin_client.get(f"{changelist(model)}?pk__in={2**63}")
        assert response.status_code in (200, 302, 400), model
        for name in char_filters(model, model_admin):  # PostgreSQL refuses a NUL (?e=1); SQLite finds nothing
            response = admin_client.get(f"{changelist(model)}?{urlencode({name: chr(0)})}")
            assert response.status_code in (200, 302), (model, name)
            checked += 1
    assert checked > 30


def test_actions_on_a_selection_that_is_no_list_of_ids_do_nothing_and_say_so(admin_client):
    sessions = StudySessionFactory.create_batch(2)
    url = changelist(StudySession)
    for selection in (["abc"], [str(2**63)], ["1.5"], [str(sessions[0].pk), "9" * 5000]):
        response = admin_client.post(url, {"action": "delete_selected",
                                           "index": "0", "_selected_action": selection}, follow=True)
        assert response.status_code == 200
        assert "The selection is not valid; nothing was done." in [str(m) for m in get_messages(response.wsgi_request)]
    assert StudySession.objects.count() == 2


def question_form(question: Question, **changes) -> dict:
    return {"study_topic": question.study_topic_id, "subject": question.subject,
            "question_text": question.question_text, "choices": json.dumps(question.choices, ensure_ascii=False),
            "correct_choice": question.correct_choice, "explanation": "", "source": "{}", **changes}


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("source", '{"exam": "\\ud800"}', "lone surrogate"),  # SQLite stored it; the change page then was a 500
        ("source", '{"exam": "a\\u0000b"}', "NUL characters"),
        ("source", '{"year": NaN}', "NaN is not JSON"),
        ("source", '{"year": 1e999}', "too large a number"),
        ("choices", "[" * 1_000 + "]" * 1_000, "nested too deeply"),  # RecursionError
        ("choices", '["a", ' + "[" * 70 + "]" * 70 + "]", "Nested more than 64"),
    ],
)
def test_json_the_databases_cannot_store_or_give_back_is_a_form_error(admin_client, field, text, message):
    question = QuestionFactory(source={"exam": "가스기사"})
    url = reverse("admin:study_question_change", args=[question.pk])
    response = admin_client.post(url, question_form(question, **{field: text}))
    assert response.status_code == 200, response.status_code
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field]), errors
    question.refresh_from_db()
    assert question.source == {"exam": "가스기사"} and question.choices == ["메탄", "에탄", "프로판", "부탄"]
    assert admin_client.get(url).status_code == 200


def test_json_with_korean_is_shown_again_as_written(admin_client):
    question = QuestionFactory()
    url = reverse("admin:study_question_change", args=[question.pk])
    response = admin_client.post(url, question_form(question, choices='["메탄", "에탄"]', correct_choice=5))
    assert response.status_code == 200  # invalid: correct_choice beyond the choices
    assert "[&quot;메탄&quot;, &quot;에탄&quot;]" in response.content.decode()  # not \uXXXX escapes


@pytest.mark.parametrize(("day", "time"), [("0001-01-01", "23:59:59"), ("1900-01-01", "23:59:59"),
                                           ("1971-12-31", "23:59:59"), ("1972-01-01", "08:59:59")])
def test_a_date_before_1972_or_after_9998_is_a_form_error(admin_client, settings, day, time):
    """Year 1 in Asia/Seoul is a year BC in UTC: PostgreSQL stored it and every later page of the row (and the
    changelist) failed to read it back; SQLite's side overflowed at once. A date before 1972 (the API's bound) was
    stored and then rendered by the API as "1900-01-01T00:00:00+08:27:52", which is not RFC 3339."""
    progress = QuestionProgressFactory(review_stage=1, due_at="2026-12-01T00:00:00Z")
    url = reverse("admin:study_questionprogress_change", args=[progress.pk])
    form = {"user": progress.user_id, "question": progress.question_id, "review_stage": 1,
            "pattern_state": progress.pattern_state or "", "pattern_window_attempts": "[]",
            "due_at_0": day, "due_at_1": time}
    settings.TIME_ZONE = "Asia/Seoul"  # 1972-01-01 00:00 UTC is 09:00 there
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["due_at"] == [
        "Enter a time from 1972-01-01 09:00 to the year 9998."]
    progress.refresh_from_db()
    assert progress.due_at.year == 2026
    assert admin_client.get(changelist(QuestionProgress)).status_code == 200


def test_the_earliest_time_itself_is_accepted(admin_client, settings):
    settings.TIME_ZONE = "Asia/Seoul"
    progress = QuestionProgressFactory(review_stage=1, due_at="2026-12-01T00:00:00Z")
    url = reverse("admin:study_questionprogress_change", args=[progress.pk])
    response = admin_client.post(url, {"user": progress.user_id, "question": progress.question_id, "review_stage": 1,
                                       "pattern_state": "", "pattern_window_attempts": "[]",
                                       "due_at_0": "1972-01-01", "due_at_1": "09:00:00",
                                       "last_reviewed_at_0": "1972-01-01", "last_reviewed_at_1": "09:00:00"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    progress.refresh_from_db()
    assert progress.due_at.isoformat() == "1972-01-01T00:00:00+00:00"


def test_a_progress_row_no_rating_or_review_could_write_is_a_form_error(admin_client):
    """The progress admins edit every field: a row the database's checks refuse (card progress without a rating,
    a question due without its review) is a form error naming the check, not a 500."""
    card_progress = CardProgressFactory()
    url = reverse("admin:study_cardprogress_change", args=[card_progress.pk])
    form = {"user": card_progress.user_id, "card": card_progress.card_id, "last_outcome": "", "review_stage": 0}
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["__all__"] == [
        "Card progress records a rating: correct, unsure or wrong, with its review time."]
    card_progress.refresh_from_db()
    assert card_progress.last_outcome == "correct"

    progress = QuestionProgressFactory()
    url = reverse("admin:study_questionprogress_change", args=[progress.pk])
    form = {"user": progress.user_id, "question": progress.question_id, "review_stage": 0,
            "pattern_window_attempts": "[]", "due_at_0": "2026-12-01", "due_at_1": "00:00:00"}
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["__all__"] == [
        "A question enters the review ladder through a review: a row that is due or past stage 0 needs its last "
        "review time."]
    progress.refresh_from_db()
    assert progress.due_at is None


def test_a_to_field_django_cannot_read_is_a_400(admin_client):
    response = admin_client.get(reverse("admin:auth_group_changelist") + "?_to_field=user&_popup=1")
    assert response.status_code == 400


def test_a_skipped_analysis_without_its_reason_is_a_form_error(admin_client):
    from study.models import SessionAnalysis
    from study.tests.factories import QuizSessionFactory

    session = QuizSessionFactory(status="done")
    analysis = SessionAnalysis.objects.create(user=session.user, quiz_session=session, status="done")
    url = reverse("admin:study_sessionanalysis_change", args=[analysis.pk])
    response = admin_client.post(url, {"user": session.user_id, "quiz_session": session.pk, "status": "skipped",
                                       "reason": ""})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["__all__"] == [
        "A skipped analysis gives its reason; a pending or done one has none."]
    analysis.refresh_from_db()
    assert analysis.status == "done"
