"""manage.py normalize_texts: NFC-normalise the texts that older versions stored as they were sent, in primary-key
batches: study sessions' classification texts (what /groups groups by and the list filters match), topic names,
question subjects and texts, document titles and tags (the filters, searches and quiz subjects) and cards' material
(the review groups and the deck filter). The API and the admin store them NFC since; a row still in an NFD spelling
(Hangul typed on macOS) forms a group of its own and matches no filter until this has run."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction
from django.db.models import Model

from publishing.models import PublishKind
from publishing.services import publish_request_many
from study.models import Document, MemoCard, Question, StudySession, StudyTopic
from study.services.sessions import NFC_FIELDS
from study.textnorm import card_dedup_hash, nfc, subject_label

from ._progress import MAX_BATCH_SIZE, RowProgress, progress_shown

TOPIC_FIELDS = ("name",)  # not the description nor the study type: those are stored as sent
# not the choices nor the explanation, stored as sent; the subject as the API stores it now (subject_label: white
# space and invisible characters too)
QUESTION_FIELDS = ("subject", "question_text")
DOCUMENT_FIELDS = ("title", "tags_text")  # the original file name has been NFC from the start


@dataclass
class Counts:
    rows: int = 0
    changed: int = 0
    too_long: int = 0  # texts that NFC would make longer than their column: left as they are
    taken: list[int] = field(default_factory=list)  # rows left as they are: another row has their unique NFC text


class Command(BaseCommand):
    help = (
        "NFC-normalise study sessions' certification, language_code, learning_level, subject and topic, topic names, "
        "question subjects and texts, document titles and tags, and cards' material, as older versions stored them "
        "(once, after upgrading; idempotent), and recompute cards' duplicate check (older versions kept invisible "
        "characters in it). Changed topics, questions and cards are republished; a topic whose NFC name another "
        "active topic of its user has, and a card whose fact another live card of its user has, are left as they are "
        "and reported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000,
                            help=f"Rows per batch and transaction (1..{MAX_BATCH_SIZE}, default 2000).")
        parser.add_argument("--dry-run", action="store_true", help="Count what would change; write nothing.")

    def handle(self, *args, batch_size: int, dry_run: bool, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
        shown = progress_shown(self.stdout, options["verbosity"])
        run = {"batch_size": batch_size, "dry_run": dry_run, "shown": shown}
        sessions = self._normalize(StudySession, NFC_FIELDS, _texts_nfc(StudySession, NFC_FIELDS), **run)
        topics = self._normalize(StudyTopic, TOPIC_FIELDS, _texts_nfc(StudyTopic, TOPIC_FIELDS), **run,
                                 republish=PublishKind.STUDY_TOPIC, taken=_topic_names_taken)
        questions = self._normalize(Question, QUESTION_FIELDS,
                                    _texts_nfc(Question, QUESTION_FIELDS, subject=subject_label), **run,
                                    republish=PublishKind.STUDY_QUESTION)
        documents = self._normalize(Document, DOCUMENT_FIELDS,
                                    _texts_nfc(Document, DOCUMENT_FIELDS, tags_text=_tags_nfc), **run)
        cards = self._normalize(MemoCard, ("extra",), _card_extra, **run, republish=PublishKind.STUDY_CARD)
        hashes = self._normalize(MemoCard, ("dedup_hash",), _card_hash, **run, taken=_card_hashes_taken,
                                 reads=("source_question_id", "format", "fact"), label="memo cards' duplicate checks")
        if shown != "none" or dry_run:
            prefix = "dry run: would have " if dry_run else ""
            self.stdout.write(f"{prefix}normalised {sessions.changed} of {sessions.rows} study session(s), "
                              f"{topics.changed} of {topics.rows} topic(s), "
                              f"{questions.changed} of {questions.rows} question(s), "
                              f"{documents.changed} of {documents.rows} document(s) and "
                              f"{cards.changed} of {cards.rows} card(s); recomputed the duplicate check of "
                              f"{hashes.changed} card(s)")
        # What is left for the operator to mend is said at every verbosity, -v 0 included.
        for label, counts in (("session", sessions), ("topic", topics), ("question", questions),
                              ("document", documents)):
            if counts.too_long:
                self.stdout.write(f"{counts.too_long} {label} text(s) left as they are: NFC would not fit the column")
        if topics.taken:
            self.stdout.write(f"{len(topics.taken)} topic name(s) left as they are: another active topic of the user "
                              f"has that name; rename or merge by hand: ids {', '.join(map(str, topics.taken))}")
        if hashes.taken:
            self.stdout.write(f"{len(hashes.taken)} card(s) left with their old duplicate check: another live card of "
                              "the user holds the same fact once invisible characters are dropped; delete or edit one "
                              f"of each pair: ids {', '.join(map(str, hashes.taken))}")

    def _normalize(self, model: type[Model], fields: tuple[str, ...], normalized: Callable[[dict], tuple[dict, int]],
                   *, batch_size: int, dry_run: bool, shown: str, republish: str | None = None,
                   taken: Callable[[list[Model]], set[int]] | None = None, reads: tuple[str, ...] = (),
                   label: str = "") -> Counts:
        """Every row of `model`, batch by batch: `normalized(values)` gives the fields' new values (from the fields
        and the columns in `reads`) and how many texts it left alone; the rows whose values change are written
        (locked first: an edit committing meanwhile is not overwritten with what was read before it).

        A text unique among some rows (a user's active topic names) comes with `taken(changed)`: the ids of the
        changed rows whose new text another row holds, or would hold once normalised. Those are left as they are
        and listed in `taken`, as is a row whose text a concurrent write takes between that check and the update
        (each such row is written in a savepoint of its own, so its IntegrityError fails only that row)."""
        counts = Counts()
        progress = RowProgress(stdout=self.stdout, total=model._base_manager.count(),
                               label=label or str(model._meta.verbose_name_plural), shown=shown)
        last = 0
        while True:
            with transaction.atomic():
                batch = model._base_manager.filter(pk__gt=last)
                if not dry_run:  # (a key-share lock: rows pointing at these, progress or evidence, can still come)
                    batch = batch.select_for_update(no_key=True)
                rows = list(batch.order_by("pk").values("pk", *fields, *reads)[:batch_size])
                if not rows:
                    break
                changed = []
                for row in rows:
                    values, left = normalized(row)
                    counts.too_long += left
                    if any(values[name] != row[name] for name in fields):
                        changed.append(model(pk=row["pk"], **values))
                if taken is not None and changed:  # left, or written row by row
                    kept = taken(changed)
                    if not dry_run:
                        kept |= _refused_updates(model, [obj for obj in changed if obj.pk not in kept], fields)
                    counts.taken += kept
                    changed = [obj for obj in changed if obj.pk not in kept]
                elif changed and not dry_run:
                    model._base_manager.bulk_update(changed, fields)
                if changed and not dry_run and republish:  # the feed's copies: projected again after the commit
                    publish_request_many(kind=republish, source_ids=[obj.pk for obj in changed])
            counts.rows += len(rows)
            counts.changed += len(changed)
            last = rows[-1]["pk"]
            progress.update(len(rows))
        progress.close()
        counts.taken.sort()
        return counts


def _texts_nfc(model: type[Model], fields: tuple[str, ...],
               **composers: Callable[[str], str]) -> Callable[[dict], tuple[dict, int]]:
    """A row's `fields` NFC (or as `composers` compose one), but for a text that NFC would make longer than its
    column (U+FB2C composes to three characters): it could not be stored, and is left as it is (and counted)."""
    limits = {name: model._meta.get_field(name).max_length for name in fields}

    def normalized(row: dict) -> tuple[dict, int]:
        values, left = {}, 0
        for name, limit in limits.items():
            composed = composers.get(name, nfc)(row[name])
            if limit is not None and len(composed) > limit:
                composed, left = row[name], left + 1
            values[name] = composed
        return values, left

    return normalized


def _tags_nfc(tags_text: str) -> str:
    """A document's tags NFC, framed as the model stores them: two tags that NFC makes one are kept once, as
    `parse_tags` and the model's setter keep them on an upload or an admin edit."""
    composed = nfc(tags_text)
    if composed == tags_text:
        return tags_text
    framed = Document()
    framed.tags = composed.split(",")
    return framed.tags_text


def _topic_names_taken(changed: list[StudyTopic]) -> set[int]:
    """The ids of the changed live topics whose NFC name another active topic of their user has, or would have once
    normalised (an NFD and an NFC spelling, or two NFD ones): a user's active topic names are unique
    (study_studytopic_name_active_uniq), and which of the two should keep the name is the user's call. A deleted
    topic's name is unique to nothing."""
    owners = StudyTopic._base_manager.filter(pk__in=[topic.pk for topic in changed]).values("user_id")
    active = StudyTopic._base_manager.filter(user_id__in=owners, deleted_at__isnull=True)
    return _held_by_another(changed, "name", ((pk, user_id, nfc(name))
                                              for pk, user_id, name in active.values_list("pk", "user_id", "name")))


def _held_by_another(changed: list[Model], field: str, live: Iterable[tuple[int, int, str]]) -> set[int]:
    """The ids of the changed rows whose new `field` value another of their owner's live rows holds, or would hold
    once normalised too; `live` gives every live row of the owners as (pk, owner, normalised value)."""
    holders: dict[tuple[int, str], set[int]] = defaultdict(set)
    owner_of = {}
    for pk, owner, value in live:
        holders[owner, value].add(pk)
        owner_of[pk] = owner
    return {row.pk for row in changed
            if row.pk in owner_of and holders[owner_of[row.pk], getattr(row, field)] != {row.pk}}


def _refused_updates(model: type[Model], changed: list[Model], fields: tuple[str, ...]) -> set[int]:
    """Write each row in a savepoint of its own; the ids of those a unique constraint refused (a name that a
    concurrent create or rename took after it was checked), which stay as they are while the others are written."""
    refused = set()
    for obj in changed:
        try:
            with transaction.atomic():
                model._base_manager.filter(pk=obj.pk).update(**{name: getattr(obj, name) for name in fields})
        except IntegrityError:
            refused.add(obj.pk)
    return refused


def _card_hash(row: dict) -> tuple[dict, int]:
    """The card's dedup hash as card_dedup_hash computes it now: older versions kept invisible characters (a zero-width
    space, a BOM) in the normalised fact, so such a card did not collide with the same fact typed clean, and
    stripped a number's sign, decimal point and per cent sign (-40 was 40)."""
    return {"dedup_hash": card_dedup_hash(source_question_id=row["source_question_id"], card_format=row["format"],
                                          fact=row["fact"])}, 0


def _card_hashes_taken(changed: list[MemoCard]) -> set[int]:
    """The ids of the changed live cards whose new hash another live card of their user has, or would have once
    recomputed (study_memocard_dedup_uniq): which of the two to keep is the reviewer's call. A deleted card's hash
    is unique to nothing."""
    owners = MemoCard._base_manager.filter(pk__in=[card.pk for card in changed]).values("user_id")
    live = MemoCard._base_manager.filter(user_id__in=owners, deleted_at__isnull=True)
    rows = live.values_list("pk", "user_id", "source_question_id", "format", "fact")
    return _held_by_another(changed, "dedup_hash", (
        (pk, user_id, card_dedup_hash(source_question_id=question_id, card_format=card_format, fact=fact))
        for pk, user_id, question_id, card_format, fact in rows))


def _card_extra(row: dict) -> tuple[dict, int]:
    """The card's `extra` with its material NFC; the other keys, and a material that is not a text, as they are."""
    extra = row["extra"]
    material = extra.get("material") if isinstance(extra, dict) else None
    if not isinstance(material, str):
        return {"extra": extra}, 0
    return {"extra": {**extra, "material": nfc(material)}}, 0
