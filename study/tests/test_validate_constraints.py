"""manage.py validate_constraints: rows older checks never covered are counted; clean checks are validated."""

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from study.models import Question, QuestionAttempt
from study.tests.factories import (
    QuestionAttemptFactory,
    QuestionFactory,
    StudySessionFactory,
    StudyTopicFactory,
    UserFactory,
)

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]  # constraints, as migrate left them


def run(*args) -> str:
    out = StringIO()
    call_command("validate_constraints", *args, stdout=out)
    return out.getvalue()


def definition_and_validity(name: str) -> tuple[str, str, bool]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT conrelid::regclass::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint"
                       " WHERE conname = %s", [name])
        return cursor.fetchone()


@contextmanager
def readded_not_valid_over(name: str, write) -> Iterator[None]:
    """As an older version left it: rows written by `write` while the constraint was not there, then the
    constraint added NOT VALID (as our migrations add it over rows). Afterwards as it was before."""
    table, definition, was_valid = definition_and_validity(name)
    definition = definition.removesuffix(" NOT VALID")
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    try:
        write()
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition} NOT VALID')
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS "{name}"')
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition} NOT VALID')
        if was_valid:  # (the test mended its rows; if it failed before that, its failure is what counts)
            with suppress(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE {table} VALIDATE CONSTRAINT "{name}"')


def test_a_check_is_counted_while_rows_break_it_and_validated_once_they_are_mended():
    name = "study_question_choice_count_chk"
    bad = QuestionFactory(choices=["A", "B"], correct_choice=1)
    with readded_not_valid_over(name, lambda: Question.objects.filter(pk=bad.pk).update(choices=["only one"])):
        counted_while_broken_then_validated(name, bad)


def counted_while_broken_then_validated(name: str, bad: Question) -> None:
    out = StringIO()
    with pytest.raises(CommandError, match="1 constraint"):
        call_command("validate_constraints", name, stdout=out)
    assert "study_question.study_question_choice_count_chk: 1 row(s) break it, listed by: SELECT * FROM " \
        "study_question WHERE (" in out.getvalue()
    listing = out.getvalue().split("listed by: ", 1)[1].split(";", 1)[0]
    with connection.cursor() as cursor:  # the query it gives lists exactly the row that breaks the check
        cursor.execute(listing.replace("SELECT *", "SELECT id", 1))
        assert cursor.fetchall() == [(bad.pk,)]
    assert definition_and_validity(name)[2] is False

    Question.objects.filter(pk=bad.pk).update(choices=["A", "B"])
    assert "no row breaks it" in run(name, "--dry-run")
    assert definition_and_validity(name)[2] is False  # a dry run validates nothing
    assert "no row breaks it; validated" in run(name)
    assert definition_and_validity(name)[2] is True


def test_a_foreign_key_that_a_row_breaks_names_the_key_and_stays_not_valid():
    name = "study_question_study_topic_same_owner_fk"
    owner, other = UserFactory(), UserFactory()
    mixed = QuestionFactory(study_topic=StudyTopicFactory(user=owner))
    with readded_not_valid_over(name, lambda: Question.objects.filter(pk=mixed.pk).update(user=other)):
        for dry_run in (["--dry-run"], []):  # a dry run tries the key too, and undoes it
            out = StringIO()
            with pytest.raises(CommandError):
                call_command("validate_constraints", name, *dry_run, stdout=out)
            key = f"rows break it: Key (study_topic_id, user_id)=({mixed.study_topic_id}, {other.pk})"
            assert key in out.getvalue()
        assert definition_and_validity(name)[2] is False
        Question.objects.filter(pk=mixed.pk).update(user=owner)
        assert "no row breaks it" in run(name, "--dry-run")
        assert definition_and_validity(name)[2] is False
        assert "validated" in run(name)
        assert definition_and_validity(name)[2] is True


def test_a_row_whose_check_is_unknown_passes_it_as_postgresql_says():
    """A CHECK fails only where its condition is false: a skip's NULL choice passes `selected_choice >= 0`, so the
    count leaves it out and the check is validated (counting NULL as breaking, it would stay NOT VALID for good)."""
    name = "study_questionattempt_selected_choice_check"
    unanswered = QuestionAttemptFactory(outcome="unsure", selected_choice=None)
    with readded_not_valid_over(name, lambda: None):
        assert definition_and_validity(name)[2] is False
        assert f"study_questionattempt.{name}: no row breaks it; validated" in run(name)
        assert definition_and_validity(name)[2] is True
    assert QuestionAttempt.objects.filter(pk=unanswered.pk, selected_choice__isnull=True).exists()


def test_an_unknown_name_is_refused():
    with pytest.raises(CommandError, match="No such constraint here: nope"):
        run("nope")
    with pytest.raises(CommandError, match="No such constraint here: nope$"):
        run("nope", "study_questionattempt_selected_choice_check")


def test_a_name_validated_already_is_done_not_an_error():
    """Run again with the same names (an upgrade script's step repeated), the command failed on them."""
    name = "study_questionattempt_selected_choice_check"
    with readded_not_valid_over(name, lambda: None):
        assert "no row breaks it; validated" in run(name)
        assert run(name) == f"{name}: valid already\n"
    assert definition_and_validity(name)[2] is True


def test_migrate_validates_what_was_added_not_valid_on_tables_without_rows():
    """A fresh install's checks and keys hold for every row from the start; a table with rows (an upgrade) keeps its
    constraint NOT VALID for `validate_constraints`, even when the rows are clean: no scan at deploy time."""
    check, key = "study_question_choice_count_chk", "study_question_study_topic_same_owner_fk"
    over_rows = "study_studysession_study_topic_same_owner_fk"
    assert all(definition_and_validity(name)[2] for name in (check, key, over_rows))  # as migrate left them
    StudySessionFactory(study_topic=StudyTopicFactory())  # rows in study_studysession, none in study_question
    with (readded_not_valid_over(check, lambda: None), readded_not_valid_over(key, lambda: None),
          readded_not_valid_over(over_rows, lambda: None)):
        assert not any(definition_and_validity(name)[2] for name in (check, key, over_rows))
        call_command("migrate", verbosity=0)
        assert definition_and_validity(check)[2] is True
        assert definition_and_validity(key)[2] is True
        assert definition_and_validity(over_rows)[2] is False


def readme_mend_queries() -> list[str]:
    """The SQL block of README's "Upgrading" that mends the rows older versions are known to leave."""
    from pathlib import Path

    from django.conf import settings

    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    block = readme.split("Mend such rows soon", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    return [statement.strip() for statement in block.split(";") if statement.strip()]


def test_the_readmes_mend_queries_mend_the_rows_older_versions_left():
    from django.utils import timezone

    from study.models import Document, MemoCard, QuestionProgress
    from study.tests.factories import DocumentFactory, MemoCardFactory, QuestionProgressFactory

    on_ladder, viewed, unviewed, extracted = (QuestionProgressFactory(), MemoCardFactory(), MemoCardFactory(),
                                              DocumentFactory(extract_status="done", extracted_at=timezone.now()))
    names = ["study_questionprogress_reviewed_chk", "study_memocard_viewed_chk", "study_document_extracted_at_chk"]

    def on_the_ladder_unreviewed() -> None:  # as older versions wrote them
        QuestionProgress.objects.filter(pk=on_ladder.pk).update(review_stage=2, due_at=timezone.now(),
                                                                last_reviewed_at=None)

    def views_without_their_time() -> None:
        MemoCard.objects.filter(pk=viewed.pk).update(view_count=3, last_viewed_at=None)
        MemoCard.objects.filter(pk=unviewed.pk).update(view_count=0, last_viewed_at=timezone.now())

    def extracted_without_a_time() -> None:
        Document.objects.filter(pk=extracted.pk).update(extracted_at=None)

    with (readded_not_valid_over(names[0], on_the_ladder_unreviewed),
          readded_not_valid_over(names[1], views_without_their_time),
          readded_not_valid_over(names[2], extracted_without_a_time)):
        with pytest.raises(CommandError, match="3 constraint"):
            run(*names)
        with connection.cursor() as cursor:
            for statement in readme_mend_queries():
                cursor.execute(statement)
        assert run(*names).count("no row breaks it; validated") == 3


def test_a_write_refused_by_a_check_an_old_row_breaks_tells_the_operator_what_to_run(api_client, user, caplog):
    """An old row breaking a check made every write carrying it a 409 whose log said only "unhandled
    IntegrityError": it now names the check and the command that lists such rows."""
    from study.models import MemoCard
    from study.tests.factories import MemoCardFactory

    card = MemoCardFactory(user=user, needs_review=False)
    name = "study_memocard_viewed_chk"

    def viewed_without_a_time() -> None:  # as older versions' bench data left them
        MemoCard.objects.filter(pk=card.pk).update(view_count=2, last_viewed_at=None)

    with readded_not_valid_over(name, viewed_without_a_time):
        response = api_client.patch(f"/api/study-cards/{card.pk}", {"cue": "주성분?"}, format="json")
        MemoCard.objects.filter(pk=card.pk).update(view_count=0)  # mended, for the constraint to be validated again

    assert response.status_code == 409, response.content
    assert response.json()["error_code"] == "conflict"
    logged = [r for r in caplog.records if r.levelname == "ERROR" and name in r.getMessage()]
    assert len(logged) == 1
    assert "manage.py validate_constraints --dry-run" in logged[0].getMessage()
