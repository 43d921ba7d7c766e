"""The schema carries no index that another index already serves, and every foreign key opens one (the migrated schema).

An index on columns that open another index of the same table serves no lookup the other does not, and every
write pays for it: a foreign key that leads a composite index or unique constraint must say `db_index=False`.
"""

import importlib

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db

OUR_APPS = ("study", "publishing", "ingest")


def our_models() -> list:
    """The models whose tables our migrations make (not proxies such as the API token admin's)."""
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models() if not model._meta.proxy]


# The btree indexes over all rows (unique constraints' too), each with its columns, operator classes and
# directions in order; an expression index is never reported (its key lists a 0).
INDEXES_SQL = """
SELECT c.relname, i.relname, x.indisunique, ARRAY[
           x.indkey::int2[]::int[], x.indclass::oid[]::int[], x.indoption::int2[]::int[]]
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_am am ON am.oid = i.relam
WHERE am.amname = 'btree' AND c.relname = ANY(%s) AND x.indpred IS NULL
"""


def redundant_indexes() -> list[tuple[str, str, str]]:
    """(table, index, the index that serves it) for each non-unique index whose columns, with the same operator
    classes and directions, open another index of its table."""
    tables = [model._meta.db_table for model in our_models()]
    with connection.cursor() as cursor:
        cursor.execute(INDEXES_SQL, [tables])
        rows = cursor.fetchall()
    found = []
    for table, name, unique, key in rows:
        if unique or 0 in key[0]:
            continue
        width = len(key[0])
        for other_table, other, _, other_key in rows:
            if other_table == table and other != name and all(part[:width] == mine
                                                              for part, mine in zip(other_key, key, strict=True)):
                found.append((table, name, other))
                break
    return sorted(found)


@pytest.mark.postgresql
def test_no_index_is_served_by_another():
    assert redundant_indexes() == []


@pytest.mark.postgresql
def test_every_foreign_key_opens_an_index():
    # The other side of db_index=False: a foreign key whose composite index went would leave the database's checks
    # and the cascades of a parent's delete scanning the whole table.
    unindexed = []
    with connection.cursor() as cursor:
        for model in our_models():
            for field in model._meta.concrete_fields:
                if not field.is_relation:
                    continue
                cursor.execute(
                    "SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid"
                    " AND a.attnum = x.indkey[0] WHERE x.indrelid = %s::regclass AND x.indpred IS NULL"
                    " AND a.attname = %s",
                    [model._meta.db_table, field.column],
                )
                if cursor.fetchone() is None:
                    unindexed.append(f"{model._meta.db_table}.{field.column}")
    assert unindexed == []


@pytest.mark.postgresql
def test_an_index_that_another_serves_is_found():
    # The check itself: an index on the column a composite index opens is found (as study/0019 dropped them); one
    # that only a partial index opens, or the other direction of a second column, is not.
    with connection.cursor() as cursor:
        for statement in [
            'CREATE INDEX "test_session_only" ON "study_questionattempt" ("quiz_session_id")',
            'CREATE INDEX "test_answered" ON "study_questionattempt" ("answered_at")',
            'CREATE INDEX "test_answered_unsure" ON "study_questionattempt" ("answered_at", "id") WHERE is_unsure',
            'CREATE INDEX "test_question_answered_desc" ON "study_questionattempt" ("question_id", "answered_at" DESC)',
        ]:
            cursor.execute(statement)
    assert redundant_indexes() == [("study_questionattempt", "test_session_only", "study_attempt_session_idx")]


@pytest.mark.django_db(transaction=True)  # CONCURRENTLY on PostgreSQL: outside a transaction, as the migration runs
def test_0019_drops_the_indexes_and_creates_them_again_when_migrated_back():
    migration = importlib.import_module("study.migrations.0019_fk_indexes_led_by_composites")

    def index_columns(table: str, index: str) -> list[str] | None:
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, table).get(index)
        return found and found["columns"]

    assert migration.Migration.atomic is False and len(migration.INDEXES) == 13
    with connection.schema_editor(atomic=False) as editor:
        for table, column, index in migration.INDEXES:
            assert index == editor._create_index_name(table, [column], suffix="")  # the name Django gave it
            assert index_columns(table, index) is None  # dropped by the migrated schema
        migration.create_indexes(apps, editor)
        assert [index_columns(table, index) for table, _, index in migration.INDEXES] == [
            [column] for _, column, _ in migration.INDEXES]
        migration.drop_indexes(apps, editor)
        assert [index_columns(table, index) for table, _, index in migration.INDEXES] == [None] * 13


@pytest.mark.postgresql
def test_no_index_for_like_queries():
    # Django adds one beside every unique or indexed CharField on PostgreSQL; no lookup of ours is a LIKE prefix
    # (publishing/0008 dropped the feed's): a unique text field says so with a UniqueConstraint in Meta instead.
    tables = [model._meta.db_table for model in our_models()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s) AND indexdef LIKE %s",
                       [tables, "%pattern_ops%"])
        assert cursor.fetchall() == []


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)  # CONCURRENTLY: outside a transaction, as the migration runs
def test_publishing_0008_drops_the_like_index_and_creates_it_again_when_migrated_back():
    migration = importlib.import_module("publishing.migrations.0008_pub_id_without_like_index")
    [operation] = migration.Migration.operations
    [run] = operation.database_operations
    assert migration.Migration.atomic is False

    def like_index() -> list:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s", [migration.LIKE_INDEX])
            return cursor.fetchall()

    with connection.schema_editor(atomic=False) as editor:
        assert editor._create_index_name("publishing_published", ["pub_id"], suffix="_like") == migration.LIKE_INDEX
        run.reverse_code(apps, editor)
    assert like_index() == [(f"CREATE INDEX {migration.LIKE_INDEX} ON public.publishing_published USING btree "
                             "(pub_id varchar_pattern_ops)",)]
    with connection.schema_editor(atomic=False) as editor:
        run.code(apps, editor)
    assert like_index() == []
