"""Migration operations of our own."""

from django.core.management.base import CommandError
from django.db import DatabaseError, connections, migrations, transaction
from django.db.models import BooleanField, ExpressionWrapper, Q

# The checks and foreign keys of this schema not validated yet (added NOT VALID): table, name, kind, definition.
NOT_VALID = """
    SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid)
    FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
    WHERE NOT c.convalidated AND n.nspname = current_schema()
    ORDER BY 1, 2
"""



def run_sql_on_postgresql(forward: str, backward: str) -> migrations.RunPython:
    """Raw SQL run on PostgreSQL only, a no-op on other databases (the SQLite demo has no PL/pgSQL triggers,
    composite foreign keys or operator classes). Sent without parameters: a `%` (RAISE, format()) is no placeholder.
    """

    def on_postgresql(sql: str):
        def run(apps, schema_editor):
            if schema_editor.connection.vendor == "postgresql":
                schema_editor.execute(sql, params=None)

        return run

    return migrations.RunPython(on_postgresql(forward), on_postgresql(backward))

class RowsBreakConstraint(CommandError):
    """A check cannot be added on a database whose rows break it (SQLite, which has no NOT VALID). A CommandError:
    `manage.py migrate` prints the message alone, without a traceback."""


class AddConstraintNotValid(migrations.AddConstraint):
    """AddConstraint that, on PostgreSQL, checks new and changed rows only (`NOT VALID`).

    For a check added after rows were written without it (an older admin form, a race the code now
    prevents): the migration cannot fail on them, and no guess repairs them; every later write is
    checked. `ALTER TABLE … VALIDATE CONSTRAINT …` checks the old rows once they are known to be clean.

    Other databases (the SQLite demo) add the constraint as usual. SQLite checks every row as it copies the table,
    so a database kept from an older version (`make demo` reuses db.sqlite3) with such rows stops here: the error
    names the rows (at most 20 ids) and the check, instead of SQLite's bare "CHECK constraint failed".
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if schema_editor.connection.vendor != "postgresql":
            if self.allow_migrate_model(schema_editor.connection.alias, model):
                self._refuse_rows_that_break_it(model, schema_editor.connection.alias)
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.execute(f"{self.constraint.create_sql(model, schema_editor)} NOT VALID")

    def _refuse_rows_that_break_it(self, model, alias: str) -> None:
        # Exactly the rows the check refuses: its condition false (a NULL, unknown, passes a CHECK).
        passes = ExpressionWrapper(Q(self.constraint.condition), output_field=BooleanField())
        breaking = model._base_manager.using(alias).alias(passes=passes).filter(passes=False)
        ids = list(breaking.order_by("pk").values_list("pk", flat=True)[:20])
        if ids:
            raise RowsBreakConstraint(
                f"Rows of {model._meta.db_table} break the check {self.constraint.name} that this migration adds "
                f"(ids {', '.join(map(str, ids))}{' …' if len(ids) == 20 else ''}): written by an older version. "
                "Mend or delete them, then run migrate again."
            )

    def describe(self) -> str:
        return f"{super().describe()} (NOT VALID on PostgreSQL)"


def validate_not_valid_constraints_of_empty_tables(*, using: str = "default", **kwargs) -> list[str]:
    """After `migrate` (post_migrate): a constraint added NOT VALID on a table without rows, as on a fresh install,
    holds for every row already, so it is validated (instantly: there is nothing to scan). Tables with rows are
    left to `manage.py validate_constraints`, which counts what breaks and scans at a time the operator picks.
    The names validated; nothing on other databases."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    validated = []
    with connection.cursor() as cursor:
        cursor.execute(NOT_VALID)
        pending = cursor.fetchall()
    for table, name, _kind, _definition in pending:
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                cursor.execute(f"SELECT EXISTS (SELECT FROM {table})")  # noqa: S608 - a name from the catalog
                if cursor.fetchone()[0]:
                    continue
                cursor.execute(f'ALTER TABLE {table} VALIDATE CONSTRAINT "{name}"')
        except DatabaseError:  # a row written meanwhile breaks it: it stays NOT VALID, as before
            continue
        validated.append(name)
    return validated
