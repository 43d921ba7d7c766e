"""manage.py normalize_texts: NFC-normalise the texts that older versions stored as they were sent, in primary-key
batches: study sessions' classification texts (what /groups groups by and the list filters match) and cards'
material (the review groups and the deck filter). The API and the admin store them NFC since; a row still in an NFD
spelling (Hangul typed on macOS) forms a group of its own and matches no filter until this has run."""

from collections.abc import Callable
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Model

from publishing.models import PublishKind
from publishing.services import publish_request_many
from study.models import MemoCard, StudySession
from study.services.sessions import NFC_FIELDS
from study.textnorm import nfc

from ._progress import MAX_BATCH_SIZE, RowProgress, progress_shown


@dataclass
class Counts:
    rows: int = 0
    changed: int = 0
    too_long: int = 0  # texts that NFC would make longer than their column: left as they are


class Command(BaseCommand):
    help = (
        "NFC-normalise study sessions' certification, language_code, learning_level, subject and topic, and cards' "
        "material, as older versions stored them (once, after upgrading; idempotent). Changed cards are republished."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000,
                            help=f"Rows per batch and transaction (1..{MAX_BATCH_SIZE}, default 2000).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *args, batch_size: int, dry_run: bool, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
        shown = progress_shown(self.stdout, options["verbosity"])
        limits = {field: StudySession._meta.get_field(field).max_length for field in NFC_FIELDS}
        sessions = self._normalize(StudySession, NFC_FIELDS, lambda row: _session_texts(row, limits),
                                   batch_size=batch_size, dry_run=dry_run, shown=shown)
        cards = self._normalize(MemoCard, ("extra",), _card_extra, batch_size=batch_size, dry_run=dry_run,
                                shown=shown, republish=PublishKind.STUDY_CARD)
        if shown == "none" and not dry_run:
            return
        prefix = "dry run: would have " if dry_run else ""
        self.stdout.write(f"{prefix}normalised {sessions.changed} of {sessions.rows} study session(s) and "
                          f"{cards.changed} of {cards.rows} card(s)")
        if sessions.too_long:
            self.stdout.write(f"{sessions.too_long} session text(s) left as they are: NFC would not fit the column")

    def _normalize(self, model: type[Model], fields: tuple[str, ...], normalized: Callable[[dict], tuple[dict, int]],
                   *, batch_size: int, dry_run: bool, shown: str, republish: str | None = None) -> Counts:
        """Every row of `model`, batch by batch: `normalized(values)` gives the fields' new values and how many texts
        it left alone; the rows whose values change are written (locked first: an edit committing meanwhile is
        not overwritten with what was read before it)."""
        counts = Counts()
        progress = RowProgress(stdout=self.stdout, total=model._base_manager.count(),
                               label=str(model._meta.verbose_name_plural), shown=shown)
        last = 0
        while True:
            with transaction.atomic():
                batch = model._base_manager.filter(pk__gt=last)
                if not dry_run:  # (a key-share lock: rows pointing at these, progress or evidence, can still come)
                    batch = batch.select_for_update(no_key=True)
                rows = list(batch.order_by("pk").values("pk", *fields)[:batch_size])
                if not rows:
                    break
                changed = []
                for row in rows:
                    values, left = normalized(row)
                    counts.too_long += left
                    if any(values[field] != row[field] for field in fields):
                        changed.append(model(pk=row["pk"], **values))
                if changed and not dry_run:
                    model._base_manager.bulk_update(changed, fields)
                    if republish:  # the feed's copies: the drain projects them again after the commit
                        publish_request_many(kind=republish, source_ids=[obj.pk for obj in changed])
            counts.rows += len(rows)
            counts.changed += len(changed)
            last = rows[-1]["pk"]
            progress.update(len(rows))
        progress.close()
        return counts


def _session_texts(row: dict, limits: dict[str, int]) -> tuple[dict, int]:
    """The session's texts NFC, but for one that NFC would make longer than its column (U+FB2C composes to three
    characters): it could not be stored, and is left as it is."""
    values, left = {}, 0
    for field, limit in limits.items():
        composed = nfc(row[field])
        if len(composed) > limit:
            composed, left = row[field], left + 1
        values[field] = composed
    return values, left


def _card_extra(row: dict) -> tuple[dict, int]:
    """The card's `extra` with its material NFC; the other keys, and a material that is not a text, as they are."""
    extra = row["extra"]
    material = extra.get("material") if isinstance(extra, dict) else None
    if not isinstance(material, str):
        return {"extra": extra}, 0
    return {"extra": {**extra, "material": nfc(material)}}, 0
