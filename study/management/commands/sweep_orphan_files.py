"""manage.py sweep_orphan_files: delete stored upload files that no document row references."""

import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from study.services.documents import OrphanSweep, document_orphan_files_sweep

from ._progress import MAX_BATCH_SIZE, progress_shown

MAX_GRACE_MINUTES = 525_600


class Command(BaseCommand):
    help = (
        "Delete files under the uploads directory that no document (live or soft-deleted) references, "
        "once older than a grace period: what a worker killed between storing and committing leaves behind."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="List the orphans; delete nothing.")
        parser.add_argument(
            "--older-than-minutes",
            type=int,
            default=60,
            help="Grace period (default 60): younger files may belong to an upload whose transaction has not "
            "committed yet.",
        )
        parser.add_argument("--batch-size", type=int, default=500,
                            help=f"File names checked per database query (1..{MAX_BATCH_SIZE}, default 500).")

    def handle(self, *args, dry_run: bool, older_than_minutes: int, batch_size: int, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
        # Zero would race uploads in flight: their file exists before their row commits.
        if not 1 <= older_than_minutes <= MAX_GRACE_MINUTES:
            raise CommandError(f"--older-than-minutes must be between 1 and {MAX_GRACE_MINUTES} (a year)")
        list_orphans = dry_run or options["verbosity"] >= 2
        shown = progress_shown(self.stdout, options["verbosity"])
        # The total is unknown until the walk ends (listing first would hold every name), so no ETA.
        bar = tqdm(desc="files", unit="files", file=self.stdout._out, disable=shown != "bar")
        started = time.monotonic()

        def report(sweep: OrphanSweep, orphans: list[str]) -> None:
            if list_orphans:
                for name in orphans:
                    self.stdout.write(f"{'would delete' if dry_run else 'deleted'} {name}")
            bar.update(sweep.examined - bar.n)
            if shown == "lines":
                rate = sweep.examined / max(time.monotonic() - started, 1e-6)
                self.stdout.write(f"examined {sweep.examined} files, {sweep.orphans} orphans ({rate:.0f} files/s)")

        sweep = document_orphan_files_sweep(
            older_than=timedelta(minutes=older_than_minutes), batch_size=batch_size, dry_run=dry_run, on_batch=report
        )
        bar.close()
        if shown != "none" or dry_run:
            prefix = "dry run: " if dry_run else ""
            self.stdout.write(
                self.style.SUCCESS(
                    f"{prefix}sweep_orphan_files: examined {sweep.examined}, orphans {sweep.orphans}, "
                    f"deleted {sweep.deleted}, kept {sweep.recent} unreferenced younger than {older_than_minutes} min"
                )
            )
        if sweep.failed:
            raise CommandError(f"{sweep.failed} orphan file(s) could not be deleted: the log names them and why")
