"""Migration operations of our own."""

from django.db import migrations


class AddConstraintNotValid(migrations.AddConstraint):
    """AddConstraint that, on PostgreSQL, checks new and changed rows only (`NOT VALID`).

    For a check added after rows were written without it (an older admin form, a race the code now
    prevents): the migration cannot fail on them, and no guess repairs them; every later write is
    checked. `ALTER TABLE … VALIDATE CONSTRAINT …` checks the old rows once they are known to be clean.
    Other databases (the SQLite demo, always created fresh) add the constraint as usual.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.execute(f"{self.constraint.create_sql(model, schema_editor)} NOT VALID")

    def describe(self) -> str:
        return f"{super().describe()} (NOT VALID on PostgreSQL)"
