"""A row and the rows it points at belong to one user: the composite foreign keys of migration 0009 (PostgreSQL),
the admin forms that say so before the database does, and the API's answer when the database says it."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.contrib import admin as admin_site
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.test import RequestFactory

from study.models import (
    CardProgress,
    MemoCard,
    Question,
    QuestionAttempt,
    QuestionExplanation,
    QuestionProgress,
    QuizSession,
    SessionAnalysis,
    StudySession,
    StudyTopic,
)
from study.tests.factories import (
    CardProgressFactory,
    MemoCardFactory,
    QuestionAttemptFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    StudySessionFactory,
    StudyTopicFactory,
    UserFactory,
)
from studyserver.errors import exception_handler

pytestmark = pytest.mark.django_db


def topic(user) -> StudyTopic:
    return StudyTopicFactory(user=user)


def question(user) -> Question:
    return QuestionFactory(study_topic=topic(user))


def quiz(user) -> QuizSession:
    return QuizSessionFactory(study_topic=topic(user), status="done")


def attempt(user) -> QuestionAttempt:
    return QuestionAttemptFactory(quiz_session=quiz(user))


def progress_with_last_attempt(user) -> QuestionProgress:
    last = attempt(user)
    return QuestionProgressFactory(question=last.question, last_attempt=last)


@dataclass(frozen=True)
class Pair:
    constraint: str
    model: type[Model]
    field: str
    make_child: Callable  # user -> a row of that user pointing at a row of that user through `field`
    make_parent: Callable  # user -> a row of that user `field` can point at
    nullable: bool = False

    def __str__(self) -> str:
        return self.constraint


PAIRS = [
    Pair("study_question_study_topic_same_owner_fk", Question, "study_topic", question, topic),
    Pair("study_quizsession_study_topic_same_owner_fk", QuizSession, "study_topic", quiz, topic),
    Pair("study_studysession_study_topic_same_owner_fk", StudySession, "study_topic",
         lambda u: StudySessionFactory(study_topic=topic(u)), topic, nullable=True),
    Pair("study_memocard_study_topic_same_owner_fk", MemoCard, "study_topic",
         lambda u: MemoCardFactory(study_topic=topic(u)), topic, nullable=True),
    Pair("study_memocard_source_question_same_owner_fk", MemoCard, "source_question",
         lambda u: MemoCardFactory(source_question=question(u), source_kind="question"), question, nullable=True),
    Pair("study_questionattempt_quiz_session_same_owner_fk", QuestionAttempt, "quiz_session", attempt, quiz),
    Pair("study_questionattempt_question_same_owner_fk", QuestionAttempt, "question", attempt, question),
    Pair("study_questionprogress_question_same_owner_fk", QuestionProgress, "question",
         lambda u: QuestionProgressFactory(question=question(u)), question),
    Pair("study_questionprogress_last_attempt_same_owner_fk", QuestionProgress, "last_attempt",
         progress_with_last_attempt, attempt, nullable=True),
    Pair("study_questionexplanation_question_same_owner_fk", QuestionExplanation, "question",
         lambda u: QuestionExplanation.objects.create(user=u, question=question(u), text="메탄"), question),
    Pair("study_cardprogress_card_same_owner_fk", CardProgress, "card",
         lambda u: CardProgressFactory(card=MemoCardFactory(user=u)), lambda u: MemoCardFactory(user=u)),
    Pair("study_sessionanalysis_quiz_session_same_owner_fk", SessionAnalysis, "quiz_session",
         lambda u: SessionAnalysis.objects.create(user=u, quiz_session=quiz(u)), quiz),
]


def check_now() -> None:
    """Run the deferred checks of this transaction now, as its commit would."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def rejects_at_commit(constraints: str | set[str], write: Callable) -> None:
    """`write` is refused when its transaction commits, by (one of) the named key(s)."""
    try:
        with pytest.raises(IntegrityError) as info, transaction.atomic():
            write()
            check_now()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    assert info.value.__cause__.sqlstate == "23503"
    assert info.value.__cause__.diag.constraint_name in ({constraints} if isinstance(constraints, str) else constraints)


def keys_of(model: type[Model]) -> set[str]:
    return {pair.constraint for pair in PAIRS if pair.model is model}


# --- the database (PostgreSQL) -------------------------------------------------------------------


@pytest.mark.postgresql
@pytest.mark.parametrize("pair", PAIRS, ids=str)
def test_a_row_cannot_point_at_another_users_row(pair, user, other_user):
    child = pair.make_child(user)
    check_now()  # a same-owner row passes
    foreign = pair.make_parent(other_user)
    rows = pair.model.objects.filter(pk=child.pk)
    rejects_at_commit(pair.constraint, lambda: rows.update(**{pair.field: foreign}))
    # The row moving away from it (a row with two keys may be refused by either first).
    rejects_at_commit(keys_of(pair.model), lambda: rows.update(user=other_user))
    parent = getattr(child, pair.field)
    # …or it moving away from the row: owners are set once (the admin shows them read-only).
    parents = type(parent).objects.filter(pk=parent.pk)
    rejects_at_commit({pair.constraint} | keys_of(type(parent)), lambda: parents.update(user=other_user))
    with transaction.atomic():
        rows.update(**{pair.field: pair.make_parent(user)})  # another row of the same owner is fine
        check_now()


@pytest.mark.postgresql
@pytest.mark.parametrize("pair", [p for p in PAIRS if p.nullable], ids=str)
def test_a_row_pointing_at_nothing_is_not_checked(pair, user, other_user):
    child = pair.make_child(user)
    pair.model.objects.filter(pk=child.pk).update(**{pair.field: None})
    check_now()
    # MATCH SIMPLE: a NULL column leaves the key unchecked, whoever owns the row.
    if pair.model is not QuestionProgress:  # its question is not nullable and keeps it with its owner
        pair.model.objects.filter(pk=child.pk).update(user=other_user)
        check_now()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_mixed_row_fails_at_commit_and_nothing_is_written(user, other_user):
    foreign_topic = StudyTopicFactory(user=other_user)
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        Question.objects.create(user=user, study_topic=foreign_topic, subject="s", question_text="q",
                                choices=["a", "b"], correct_choice=1)  # accepted here: the key is deferred
    assert info.value.__cause__.diag.constraint_name == "study_question_study_topic_same_owner_fk"
    assert not Question.objects.exists()

    # Deleting a parent still does what Django's on_delete says (the single-column keys), at commit too.
    card = MemoCardFactory(study_topic=StudyTopicFactory(user=user), source_question=question(user))
    with transaction.atomic():
        card.study_topic.delete()
        card.source_question.delete()
    card.refresh_from_db()
    assert (card.study_topic_id, card.source_question_id) == (None, None)
    user_id = user.pk
    with transaction.atomic():
        user.delete()  # every row of the user, in Django's order, in one transaction
    assert not MemoCard.objects.exists() and not StudyTopic.objects.filter(user_id=user_id).exists()


KEY_QUERY = """
    SELECT conname, convalidated FROM pg_constraint
    WHERE conname LIKE 'study%same_owner_fk' OR conname LIKE 'study%id_user_uniq'
"""


def keys() -> dict[str, bool]:
    with connection.cursor() as cursor:
        cursor.execute(KEY_QUERY)
        return dict(cursor.fetchall())


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_keys_are_added_not_valid_over_older_mixed_rows_and_are_reversible(user, other_user):
    from django.db.migrations.executor import MigrationExecutor

    expected = {pair.constraint for pair in PAIRS} | {
        f"study_{table}_id_user_uniq" for table in ("memocard", "question", "questionattempt", "quizsession",
                                                    "studytopic")
    }
    assert set(keys()) == expected
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    mixed = QuestionFactory(study_topic=topic(user))
    try:
        executor.migrate([("study", "0008_apitoken_proxy")])
        assert keys() == {}
        with connection.cursor() as cursor:  # what the old admin let staff write
            cursor.execute("UPDATE study_question SET user_id = %s WHERE id = %s", [other_user.pk, mixed.pk])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    state = keys()
    assert set(state) == expected
    assert not any(valid for name, valid in state.items() if name.endswith("_fk"))  # NOT VALID: old rows stay
    assert Question.objects.get(pk=mixed.pk).user_id == other_user.pk
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        QuestionFactory(user=other_user, study_topic=topic(user))
    assert info.value.__cause__.diag.constraint_name == "study_question_study_topic_same_owner_fk"
    with transaction.atomic():
        Question.objects.filter(pk=mixed.pk).update(subject="다른 과목")  # keys unchanged: not re-checked
    Question.objects.filter(pk=mixed.pk).update(user=user)  # repaired
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE study_question VALIDATE CONSTRAINT study_question_study_topic_same_owner_fk")


# --- the API's answer ----------------------------------------------------------------------------


@pytest.mark.postgresql
def test_the_api_answers_a_same_owner_violation_404_and_other_conflicts_409(user, other_user):
    child = question(user)
    foreign = topic(other_user)
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        Question.objects.filter(pk=child.pk).update(study_topic=foreign)
        check_now()
    check_now()
    response = exception_handler(info.value, {})
    assert response.status_code == 404
    assert response.data["error_code"] == "not_found"

    with pytest.raises(IntegrityError) as info, transaction.atomic():
        StudyTopic.objects.create(user=user, name=child.study_topic.name)
    response = exception_handler(info.value, {})
    assert (response.status_code, response.data["error_code"]) == (409, "conflict")


# --- the admin -----------------------------------------------------------------------------------


@pytest.fixture
def admin_request(admin_user):
    request = RequestFactory().get("/")
    request.user = admin_user
    return request


def admin_form(model: type[Model], request, data: dict):
    form_class = admin_site.site._registry[model].get_form(request)
    return form_class(data=data)


def test_admin_forms_refuse_rows_of_another_user(admin_request, user, other_user):
    own_quiz, foreign_quiz = quiz(user), quiz(other_user)
    foreign_question = question(other_user)
    foreign_attempt = attempt(other_user)
    # Quiz sessions and attempts are not written in the admin at all (study/tests/test_admin_quizzes.py).
    cases = [
        (QuestionProgress, {"user": user.pk, "question": foreign_question.pk, "last_attempt": foreign_attempt.pk,
                            "pattern_window_attempts": "[]", "review_stage": 0}, ["question", "last_attempt"]),
        (SessionAnalysis, {"user": user.pk, "quiz_session": foreign_quiz.pk, "status": "pending"},
         ["quiz_session"]),
    ]
    for model, data, fields in cases:
        form = admin_form(model, admin_request, data)
        assert not form.is_valid()
        assert sorted(form.errors) == sorted(fields), (model, form.errors)
        assert all("belongs to another user" in str(form.errors[f]) for f in fields)

    # The same rows of the user's own pass the check.
    own_attempt = attempt(user)
    ok = [
        (QuestionProgress, {**cases[0][1], "question": own_attempt.question_id, "last_attempt": own_attempt.pk}),
        (SessionAnalysis, {**cases[1][1], "quiz_session": own_quiz.pk}),
    ]
    for model, data in ok:
        form = admin_form(model, admin_request, data)
        assert form.is_valid(), (model, form.errors)


def test_admin_card_progress_form_refuses_another_users_card(admin_request, user, other_user):
    # Without the form check PostgreSQL refuses the pair at commit (study_cardprogress_card_same_owner_fk): a 500.
    data = {"user": user.pk, "review_stage": 0, "last_outcome": "correct", "last_reviewed_at_0": "2025-12-01",
            "last_reviewed_at_1": "09:00:00"}
    form = admin_form(CardProgress, admin_request, {**data, "card": MemoCardFactory(user=other_user).pk})
    assert not form.is_valid()
    assert list(form.errors) == ["card"] and "belongs to another user" in str(form.errors["card"])

    form = admin_form(CardProgress, admin_request, {**data, "card": MemoCardFactory(user=user).pk})
    assert form.is_valid(), form.errors


def test_factories_build_same_owner_rows():
    owner = UserFactory()
    card = MemoCardFactory(source_question=question(owner))
    assert card.user_id == card.source_question.user_id == owner.pk
    assert MemoCardFactory(study_topic=topic(owner)).user_id == owner.pk
    assert StudySessionFactory(study_topic=topic(owner)).user_id == owner.pk
    assert MemoCardFactory().user_id != StudySessionFactory().user_id  # no parent: a new user each


