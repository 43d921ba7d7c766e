"""AddConstraintNotValid over rows an older version wrote: NOT VALID on PostgreSQL, a clear refusal on SQLite."""

import pytest
from django.apps import apps
from django.db import ProgrammingError, connection, migrations
from django.db.migrations.state import ProjectState

from study.models import Question
from study.tests.factories import QuestionFactory
from studyserver.migration_operations import AddConstraintNotValid, RowsBreakConstraint, run_sql_on_postgresql

NAME = "study_question_choice_count_chk"


@pytest.mark.django_db(transaction=True)  # schema changes, as a migration makes them
def test_a_check_added_over_rows_that_break_it():
    constraint = next(c for c in Question._meta.constraints if c.name == NAME)
    operation = AddConstraintNotValid(model_name="question", constraint=constraint)
    state = ProjectState.from_apps(apps)
    without = state.clone()  # the state before the migration: no such check
    removal = migrations.RemoveConstraint(model_name="question", name=NAME)
    removal.state_forwards("study", without)
    good = QuestionFactory(choices=["A", "B"], correct_choice=1)
    bad = QuestionFactory(choices=["A", "B"], correct_choice=1)
    with connection.schema_editor() as editor:
        removal.database_forwards("study", editor, state, without)
    try:
        Question.objects.filter(pk=bad.pk).update(choices=["only one"])  # as an older admin form could write it

        if connection.vendor == "postgresql":
            with connection.schema_editor() as editor:
                operation.database_forwards("study", editor, without, state)
            with connection.cursor() as cursor:
                cursor.execute("SELECT convalidated FROM pg_constraint WHERE conname = %s", [NAME])
                assert cursor.fetchall() == [(False,)]  # added, for new and changed rows only
        else:
            with pytest.raises(RowsBreakConstraint, match=rf"study_question break the check {NAME}.*ids {bad.pk}\)"):
                with connection.schema_editor() as editor:
                    operation.database_forwards("study", editor, without, state)
        assert set(Question.objects.values_list("pk", flat=True)) == {good.pk, bad.pk}  # nothing guessed or lost
    finally:
        Question.objects.filter(pk=bad.pk).delete()
        if connection.vendor != "postgresql":
            with connection.schema_editor() as editor:
                operation.database_forwards("study", editor, without, state)  # clean now: added as usual


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_deck_index_is_created_where_an_early_0001_left_it_out():
    import importlib

    repair = importlib.import_module("study.migrations.0014_deck_index_where_0001_lacked_it")

    def deck_index() -> list:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'study_card_user_deck_idx'")
            return cursor.fetchall()

    [(definition,)] = deck_index()
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX study_card_user_deck_idx")  # as a database migrated by the early 0001 is
    try:
        with connection.schema_editor() as editor:
            repair.create_deck_index_if_missing(apps, editor)
        assert deck_index() == [(definition,)]
        with connection.schema_editor() as editor:
            repair.create_deck_index_if_missing(apps, editor)  # present: nothing happens
        assert deck_index() == [(definition,)]
    finally:
        if not deck_index():
            with connection.cursor() as cursor:
                cursor.execute(definition)


@pytest.mark.django_db(transaction=True)  # as a migration runs it (SQLite's schema editor refuses an atomic block)
def test_sql_run_on_postgresql_only_and_as_written():
    # Fails wherever it runs; its `%` is no placeholder (else psycopg would refuse it before PostgreSQL could).
    operation = run_sql_on_postgresql('SELECT "100%" FROM "no_such_table"', "SELECT 1")
    if connection.vendor == "postgresql":
        missing = pytest.raises(ProgrammingError, match='"no_such_table" does not exist')
        with missing, connection.schema_editor() as editor:
            operation.code(apps, editor)
    else:
        with connection.schema_editor() as editor:
            operation.code(apps, editor)  # the demo's SQLite: not run at all
    with connection.schema_editor() as editor:
        operation.reverse_code(apps, editor)
