"""manage.py backfill_publish: re-project whole kinds into Published, in primary-key batches."""

from collections.abc import Iterator

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet

from publishing.models import Published, PublishKind
from publishing.services import PublishCounts, publish_sources
from study.management.commands._progress import MAX_BATCH_SIZE, RowProgress, progress_shown
from study.models import CardProgress, MemoCard, Question, StudyTopic

SOURCES = {
    PublishKind.STUDY_TOPIC: StudyTopic,
    PublishKind.STUDY_QUESTION: Question,
    PublishKind.STUDY_CARD: MemoCard,
    PublishKind.STUDY_CARD_PROGRESS: CardProgress,
}


class Command(BaseCommand):
    help = "Project every row of a kind (or all kinds) into the published read model; idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", required=True, choices=[*PublishKind.values, "all"],
                            help="The kind to re-project, or all of them (in reference order).")
        parser.add_argument("--user", type=int, default=None, help="Only rows of this user id.")
        parser.add_argument("--batch-size", type=int, default=500,
                            help=f"Rows per batch and transaction (1..{MAX_BATCH_SIZE}, default 500).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *args, kind: str, user: int | None, batch_size: int, dry_run: bool, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
        if user is not None and not get_user_model().objects.filter(pk=user).exists():
            raise CommandError(f"--user {user}: no such user")
        kinds = list(SOURCES) if kind == "all" else [PublishKind(kind)]
        total = PublishCounts()
        # A dry run keeps the rows it would have inserted, so a row referenced from many batches (and kinds)
        # counts once, as a real run writes it once.
        inserted: set | None = set() if dry_run else None
        shown = progress_shown(self.stdout, options["verbosity"])
        for one_kind in kinds:
            total.add(self._backfill_kind(one_kind, user_id=user, batch_size=batch_size, dry_run=dry_run,
                                          dry_run_inserted=inserted, shown=shown))
        if shown == "none" and not dry_run:  # a dry run's counts are what it is run for
            return
        prefix = "dry run: would have " if dry_run else ""
        self.stdout.write(
            f"{prefix}published {total.published}, tombstoned {total.tombstoned}, unchanged {total.unchanged}"
        )

    def _backfill_kind(
        self, kind: str, *, user_id: int | None, batch_size: int, dry_run: bool, dry_run_inserted: set | None,
        shown: str = "lines",
    ) -> PublishCounts:
        queryset = SOURCES[kind].objects.all()
        if user_id is not None:
            queryset = queryset.filter(user_id=user_id)
        counts = PublishCounts()
        progress = RowProgress(stdout=self.stdout, total=queryset.count(), label=kind, shown=shown)
        for ids in _id_batches(queryset.values_list("pk", flat=True), "pk", batch_size):
            with transaction.atomic():
                batch = publish_sources(kind_ids={kind: ids}, dry_run=dry_run, dry_run_inserted=dry_run_inserted)
            counts.add(batch)
            progress.update(len(ids))
        progress.close()
        if user_id is None:
            counts.add(self._retract_gone(kind, batch_size=batch_size, dry_run=dry_run,
                                          dry_run_inserted=dry_run_inserted))
        if not dry_run and progress.done:
            self._analyze_feed()
        return counts

    @staticmethod
    def _retract_gone(kind: str, *, batch_size: int, dry_run: bool, dry_run_inserted: set | None) -> PublishCounts:
        """Tombstone the live feed rows whose source is gone for good: the rows of a user deleted while
        STUDY_PUBLISH_ENABLED was off (with it on, the deletion retracts them itself). Not with --user: such rows
        have no user any more."""
        gone = (
            Published.objects.filter(kind=kind, deleted=False)
            .exclude(Exists(SOURCES[kind].objects.filter(pk=OuterRef("source_id"))))
            .values_list("source_id", flat=True)
        )
        counts = PublishCounts()
        for ids in _id_batches(gone, "source_id", batch_size):
            with transaction.atomic():
                counts.add(publish_sources(kind_ids={kind: ids}, dry_run=dry_run, dry_run_inserted=dry_run_inserted))
        return counts

    @staticmethod
    def _analyze_feed() -> None:
        """Refresh the feed table's planner statistics after a bulk write, so the next kind's reference
        lookups use the (kind, source_id) index instead of scanning a kind the planner believes empty."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Published._meta.db_table}")


def _id_batches(ids: QuerySet, field: str, batch_size: int) -> Iterator[list[int]]:
    """`ids` (a values_list of `field`) in ascending batches of `batch_size`, by keyset: each batch is read after
    the previous one was handled, so what that one changed (a row no longer matching) does not shift the next."""
    last = 0
    while batch := list(ids.filter(**{f"{field}__gt": last}).order_by(field)[:batch_size]):
        yield batch
        last = batch[-1]
