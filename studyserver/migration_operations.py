"""Migration operations of our own."""

from django.core.management.base import CommandError
from django.db import migrations
from django.db.models import BooleanField, ExpressionWrapper, Q


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
