"""manage.py validate_constraints: check the rows older checks never covered, and validate the clean checks."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection, transaction

from studyserver.migration_operations import NOT_VALID


class Command(BaseCommand):
    help = (
        "PostgreSQL: for each check or foreign key added NOT VALID over rows written before it, count the rows "
        "that break it, and validate the ones no row breaks (then they hold for every row)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="only these constraints (default: every one NOT VALID)")
        parser.add_argument("--dry-run", action="store_true", help="count the rows that break each; validate none")

    def handle(self, *args, names: list[str], dry_run: bool, **options) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to do: this database checks every row when a check is added.")
            return
        with connection.cursor() as cursor:
            cursor.execute(NOT_VALID)
            pending = [row for row in cursor.fetchall() if not names or row[1] in names]
        unknown = set(names) - {name for _table, name, _kind, _definition in pending}
        if unknown:
            # A name validated already (by an earlier run: a script may run this step again) is done, not an error.
            with connection.cursor() as cursor:
                cursor.execute("SELECT conname FROM pg_constraint WHERE conname = ANY(%s) AND convalidated",
                               [sorted(unknown)])
                valid = {name for (name,) in cursor.fetchall()}
            if unknown - valid:
                raise CommandError(f"No such constraint here: {', '.join(sorted(unknown - valid))}")
            if options["verbosity"] >= 1:
                for name in sorted(valid):
                    self.stdout.write(f"{name}: valid already")
        broken = []
        for table, name, kind, definition in pending:
            problem = self._rows_breaking(table, kind, definition)
            if problem is None:
                problem = self._validate(table, name, keep=not dry_run)
            if problem:
                broken.append(name)
                self.stdout.write(f"{table}.{name}: {problem} ({definition})")
            elif options["verbosity"] >= 1:
                self.stdout.write(f"{table}.{name}: no row breaks it" + ("" if dry_run else "; validated"))
        if broken:
            raise CommandError(f"{len(broken)} constraint(s) still NOT VALID: mend or delete their rows (a check's "
                               "line gives the query that lists them), then run this again.")
        if options["verbosity"] >= 1 and not pending and not names:
            self.stdout.write("Every constraint is valid.")

    def _rows_breaking(self, table: str, kind: str, definition: str) -> str | None:
        """How many rows break a check ("N row(s) break it"), or None; foreign keys are left to VALIDATE."""
        if kind != "c":
            return None
        condition = definition.removesuffix(" NOT VALID").removeprefix("CHECK ")
        with connection.cursor() as cursor:
            # A CHECK passes when its condition is true or unknown (NULL): the rows where it is false break it.
            breaking = f"FROM {table} WHERE ({condition}) IS FALSE"
            cursor.execute(f"SELECT count(*) {breaking}")
            (count,) = cursor.fetchone()
        return f"{count} row(s) break it, listed by: SELECT * {breaking};" if count else None

    def _validate(self, table: str, name: str, *, keep: bool) -> str | None:
        """VALIDATE; undone when not `keep` (a dry run learns whether a foreign key holds, and changes nothing)."""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f'ALTER TABLE {table} VALIDATE CONSTRAINT "{name}"')
                transaction.set_rollback(not keep)
        except DatabaseError as exc:  # a foreign key that a row breaks: PostgreSQL names the first such key
            detail = getattr(getattr(exc.__cause__, "diag", None), "message_detail", None)
            return f"rows break it: {detail or exc}"
        return None
