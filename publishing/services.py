"""Writes of the publishing app: publish requests (outbox), the drain, and the state-based upsert of Published."""

import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BigIntegerField, F, Lookup, Max, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from study.models import CardProgress, MemoCard, Question, StudyTopic
from studyserver.caches import cache_breaker, cache_is_shared
from studyserver.celery import send_or_log
from studyserver.locks import advisory_xact_lock

from . import projections
from .feed import feed_item_json
from .models import Published, PublishKind, PublishOutbox

logger = logging.getLogger(__name__)

# One advisory lock serialises projection and seq assignment; it is held until commit,
# so Published rows become visible in seq order and a feed reader following `after` misses nothing.
PUBLISH_LOCK_KEY = 7_310_401_001
DRAIN_BATCH_SIZE = 500

Key = tuple[str, int]
# Referenced rows come first in seq, so a reader paging the feed meets a topic before its questions.
KIND_ORDER = {
    PublishKind.STUDY_TOPIC: 0,
    PublishKind.STUDY_QUESTION: 1,
    PublishKind.STUDY_CARD: 2,
    PublishKind.STUDY_CARD_PROGRESS: 3,
}


@dataclass
class PublishCounts:
    published: int = 0
    tombstoned: int = 0
    unchanged: int = 0

    def add(self, other: "PublishCounts") -> None:
        self.published += other.published
        self.tombstoned += other.tombstoned
        self.unchanged += other.unchanged


# --- recording requests -------------------------------------------------------


# While a kick waits in the queue, further kicks are redundant: the drain it starts claims every row
# committed before it runs. A shared-cache flag marks "a kick is queued and has not started"; the drain
# clears it before claiming, so a commit that sees the flag is always covered by that drain.
KICK_PENDING_TIMEOUT = 5  # seconds; a kick lost after sending only delays the next one this long


def _kick_pending_key() -> str | None:
    """The flag's cache key, or None where there is no cache shared with the workers (then always kick)."""
    from celery import current_app

    if current_app.conf.task_always_eager or not cache_is_shared():
        return None
    return f"publish:kick-pending:{connection.settings_dict['NAME']}"


def _cache_call(method: str, *args, skip_while_down: bool = True, **kwargs):
    """A cache call whose failure is logged and answered None: the flag is an optimisation only, and kicking (or
    draining) anyway is always correct. `skip_while_down`: not asked while the cache is known to be unreachable
    (cache_breaker), as a Redis that hangs would cost every commit that requests a publish its timeout."""
    def call():
        return getattr(cache, method)(*args, **kwargs)

    try:
        return cache_breaker.call("publish kick flag", call, fallback=None) if skip_while_down else call()
    except Exception:  # the cache may be down, or anything else: logged, and the commit has happened; never an error
        logger.exception("publish kick flag: cache.%s failed", method)
        return None


def kick_pending_clear() -> None:
    """Called by the drain task before it claims rows: later commits must kick again. Always asked, also while the
    cache breaker skips the cache: a flag left set after this drain has started would spare the next commits' kicks
    that this drain no longer covers (their rows would wait for the sweep)."""
    key = _kick_pending_key()
    if key is not None:
        _cache_call("delete", key, skip_while_down=False)


class _DrainKick:
    """After commit: ask a worker to drain now. A lost kick is harmless; the periodic sweep drains later."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self) -> None:
        from .tasks import publish_drain

        self.fired = True
        key = _kick_pending_key()
        if key is not None and _cache_call("add", key, 1, timeout=KICK_PENDING_TIMEOUT) is False:
            return  # a queued drain that has not started yet will see this transaction's rows
        if not send_or_log(publish_drain) and key is not None:  # the broker is down: the outbox rows survive
            _cache_call("delete", key)


def _schedule_drain_once() -> None:
    """Register one drain kick per transaction, however many rows it records.

    The kick lives in the connection's on-commit list, so a rolled-back (savepoint) transaction
    drops it together with its outbox rows, and the next request registers it again.
    """
    conn = transaction.get_connection()
    if conn.in_atomic_block and any(
        isinstance(entry[1], _DrainKick) and not entry[1].fired for entry in conn.run_on_commit
    ):
        return
    transaction.on_commit(_DrainKick())


def publish_request(*, kind: str, source_id: int) -> None:
    """Record in the outbox, inside the caller's transaction, that (kind, source_id) changed.

    The drain projects the current state after commit; recording is gated by STUDY_PUBLISH_ENABLED.
    """
    if not settings.STUDY_PUBLISH_ENABLED:
        return
    PublishOutbox.objects.create(kind=PublishKind(kind), source_id=source_id)
    _schedule_drain_once()


def publish_request_many(*, kind: str, source_ids: Iterable[int]) -> None:
    """The bulk form of publish_request (one INSERT, one kick)."""
    if not settings.STUDY_PUBLISH_ENABLED:
        return
    kind = PublishKind(kind)
    rows = [PublishOutbox(kind=kind, source_id=sid) for sid in source_ids]
    if not rows:
        return
    PublishOutbox.objects.bulk_create(rows)
    _schedule_drain_once()


def user_published_retract(*, user_id: int) -> None:
    """Record, in the deleting transaction, a publish request for every live row of a user being deleted.

    Their sources go with the user, so the drain writes each row as a tombstone at a fresh seq; the rows
    themselves stay (detached from the user), so the top seq never goes back under a viewer's `after`.
    Takes the publish lock until the deletion commits: a drain committing meanwhile would publish a row of this
    user that the list below missed and no later request would ever retract.
    """
    publish_lock()
    keys = Published.objects.filter(user_id=user_id, deleted=False).values_list("kind", "source_id")
    for kind, source_ids in _group(keys).items():
        publish_request_many(kind=kind, source_ids=sorted(source_ids))


# --- loading sources and their references --------------------------------------


# Only the columns the projections and references read (no timestamps, no full question under a card);
# a card's topic (its own, else its source question's) comes as card_topic_id, a question's AI explanation
# as ai_explanation_text and its topic's deleted_at as topic_deleted_at.
_LOAD_COLUMNS = {
    PublishKind.STUDY_TOPIC: ("id", "user_id", "deleted_at", "name", "study_type"),
    PublishKind.STUDY_QUESTION: (
        *("id", "user_id", "study_topic_id", "deleted_at", "subject", "question_text", "choices"),
        *("correct_choice", "explanation"),
    ),
    PublishKind.STUDY_CARD: (
        *("id", "user_id", "study_topic_id", "source_question_id", "deleted_at", "needs_review"),
        *("format", "cue", "fact", "cloze_text", "extra"),
    ),
    PublishKind.STUDY_CARD_PROGRESS: (
        *("id", "user_id", "card_id", "last_outcome", "last_reviewed_at", "due_at", "review_stage"),
    ),
}


class _AnyOf(Lookup):
    """`column = ANY(%s::bigint[])`: one array parameter instead of one placeholder per id (PostgreSQL)."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, list(self.rhs)]


def _ids_q(ids: set[int]) -> Q:
    """id in ids, bounded by their range: an index range scan even without planner statistics."""
    in_ids = Q(_AnyOf(F("id"), sorted(ids))) if connection.vendor == "postgresql" else Q(id__in=ids)
    return Q(id__gte=min(ids), id__lte=max(ids)) & in_ids


def _load(kind: str, ids: set[int]) -> list[SimpleNamespace]:
    """The source rows as plain attribute rows (values(), no model instances): what the projections read."""
    columns = _LOAD_COLUMNS[PublishKind(kind)]
    if kind == PublishKind.STUDY_TOPIC:
        rows = StudyTopic.objects.filter(_ids_q(ids)).values(*columns)
    elif kind == PublishKind.STUDY_QUESTION:
        rows = Question.objects.filter(_ids_q(ids)).values(
            *columns, ai_explanation_text=F("ai_explanation__text"), topic_deleted_at=F("study_topic__deleted_at")
        )
    elif kind == PublishKind.STUDY_CARD:
        rows = MemoCard.objects.filter(_ids_q(ids)).values(*columns, card_topic_id=_card_topic())
    else:
        card_topic = MemoCard.objects.filter(pk=OuterRef("card_id")).annotate(topic=_card_topic()).values("topic")
        topic = Subquery(card_topic[:1], output_field=BigIntegerField())
        rows = CardProgress.objects.filter(_ids_q(ids)).values(*columns, card_topic_id=topic)
    loaded = [SimpleNamespace(**row) for row in rows]
    if kind == PublishKind.STUDY_CARD:
        for row in loaded:
            row.material = MemoCard.material.fget(row)  # the model's own rule, on the plain row
    return loaded


def _card_topic() -> Coalesce:
    """A card's topic: its own, else its source question's (a primary-key lookup per row, never a join
    the planner could turn into a scan of every question)."""
    question_topic = Question.objects.filter(pk=OuterRef("source_question_id")).values("study_topic_id")[:1]
    return Coalesce(F("study_topic_id"), Subquery(question_topic), output_field=BigIntegerField())


# The kinds a payload refers to (see _references): a card progress row is never referenced.
REFERENCED_KINDS = frozenset({PublishKind.STUDY_TOPIC, PublishKind.STUDY_QUESTION, PublishKind.STUDY_CARD})


def _references(kind: str, row: Any) -> list[Key]:
    """The rows a payload refers to by pub_id."""
    refs: list[tuple[str, int | None]] = []
    if kind == PublishKind.STUDY_QUESTION:
        refs = [(PublishKind.STUDY_TOPIC, row.study_topic_id)]
    elif kind == PublishKind.STUDY_CARD:
        refs = [(PublishKind.STUDY_TOPIC, row.card_topic_id), (PublishKind.STUDY_QUESTION, row.source_question_id)]
    elif kind == PublishKind.STUDY_CARD_PROGRESS:
        refs = [(PublishKind.STUDY_CARD, row.card_id), (PublishKind.STUDY_TOPIC, row.card_topic_id)]
    return [(k, sid) for k, sid in refs if sid is not None]


def _project(kind: str, row: Any, pub_ids: Mapping[Key, str]) -> dict | None:
    def ref(ref_kind: str, sid: int | None) -> str | None:
        return pub_ids.get((ref_kind, sid)) if sid is not None else None

    if kind == PublishKind.STUDY_TOPIC:
        return projections.project_topic(row)
    if kind == PublishKind.STUDY_QUESTION:
        return projections.project_question(
            row,
            topic_pub_id=ref(PublishKind.STUDY_TOPIC, row.study_topic_id),
            ai_explanation=row.ai_explanation_text,
            topic_live=row.topic_deleted_at is None,
        )
    if kind == PublishKind.STUDY_CARD:
        return projections.project_card(
            row,
            topic_pub_id=ref(PublishKind.STUDY_TOPIC, row.card_topic_id),
            question_pub_id=ref(PublishKind.STUDY_QUESTION, row.source_question_id),
        )
    return projections.project_card_progress(
        row,
        card_pub_id=ref(PublishKind.STUDY_CARD, row.card_id),
        topic_pub_id=ref(PublishKind.STUDY_TOPIC, row.card_topic_id),
    )


def _group(keys: Iterable[Key]) -> dict[str, set[int]]:
    grouped: dict[str, set[int]] = defaultdict(set)
    for kind, sid in keys:
        grouped[kind].add(sid)
    return grouped


class _Current(NamedTuple):
    """What Published holds for a key: enough to compare with a fresh projection."""

    pub_id: str
    user_id: int
    payload: dict | None
    deleted: bool


def _keys_q(keys: set[Key]) -> Q:
    """Published rows of these keys. The id range keeps the (kind, source_id) index scan narrow even when the
    planner's statistics are stale (a feed just truncated and backfilled would otherwise scan the whole kind)."""
    condition = Q()
    for kind, ids in _group(keys).items():
        in_ids = (
            Q(_AnyOf(F("source_id"), sorted(ids))) if connection.vendor == "postgresql" else Q(source_id__in=ids)
        )
        condition |= Q(kind=kind, source_id__gte=min(ids), source_id__lte=max(ids)) & in_ids
    return condition


def _published_map(keys: set[Key]) -> dict[Key, _Current]:
    """The current Published state of these keys (plain tuples, no model instances)."""
    if not keys:
        return {}
    rows = Published.objects.filter(_keys_q(keys)).values_list(
        "kind", "source_id", "pub_id", "user_id", "payload", "deleted"
    )
    return {(kind, sid): _Current(pub_id, user_id, payload, deleted) for kind, sid, pub_id, user_id, payload, deleted
            in rows}


def _published_pub_ids(keys: set[Key]) -> dict[Key, str]:
    """pub_id of the keys already published (references need nothing else)."""
    if not keys:
        return {}
    return {(kind, sid): pub_id for kind, sid, pub_id in
            Published.objects.filter(_keys_q(keys)).values_list("kind", "source_id", "pub_id")}


def publish_lock() -> None:
    """Take the publish lock until the end of the current transaction."""
    advisory_xact_lock(PUBLISH_LOCK_KEY)


def new_pub_id() -> str:
    """An opaque id, not derivable from the source id."""
    return secrets.token_urlsafe(16)


# --- projecting and upserting --------------------------------------------------


def publish_sources(
    *,
    kind_ids: Mapping[str, Iterable[int]],
    dry_run: bool = False,
    now: datetime | None = None,
    dry_run_inserted: set[Key] | None = None,
) -> PublishCounts:
    """Project the current state of these sources and upsert their Published rows.

    State-based and idempotent: an unchanged row keeps its seq. Rows referenced by a payload
    that were never published are projected too, so every pub_id reference resolves.
    Must run inside a transaction; takes the publish lock until it commits.

    A dry run counts and writes nothing. Over several dry-run calls, `dry_run_inserted` stands for the rows
    the earlier calls would have inserted (this call adds its own): a row they would have written as a
    reference counts as published, not again, as in a real run. (Only for references: a key requested again
    after an earlier call would have inserted it is not compared with that row.)
    """
    now = now or timezone.now()
    requested: set[Key] = {(PublishKind(kind), int(sid)) for kind, ids in kind_ids.items() for sid in ids}
    counts = PublishCounts()
    if not requested:
        return counts

    publish_lock()
    existing = _published_map(requested)
    pub_ids = {key: current.pub_id for key, current in existing.items()}
    loaded: dict[Key, Any] = {}
    referenced: set[Key] = set()
    seen = set(requested)
    to_load = set(requested)
    while to_load:
        for kind, ids in _group(to_load).items():
            loaded.update({(kind, row.id): row for row in _load(kind, ids)})
        refs = {ref for key in to_load if key in loaded for ref in _references(key[0], loaded[key])}
        referenced |= refs
        refs -= seen
        seen |= refs
        pub_ids.update(_published_pub_ids(refs))
        if dry_run and dry_run_inserted:
            pub_ids.update({ref: new_pub_id() for ref in refs & dry_run_inserted if ref not in pub_ids})
        to_load = {ref for ref in refs if ref not in pub_ids}
    # Referenced but never published, whether loaded as a reference or requested in this same batch (a card
    # made and deleted before its first drain, with its progress): written even as a tombstone, so the
    # pub_id a payload carries exists and stays the same.
    forced = {key for key in referenced if key not in pub_ids and key in loaded}

    for key in loaded:
        pub_ids.setdefault(key, new_pub_id())

    writes: list[tuple[Key, int, dict | None]] = []
    for key in sorted(requested | forced, key=lambda k: (KIND_ORDER[k[0]], k[1])):
        current = existing.get(key)
        row = loaded.get(key)
        if row is None:  # the source row is gone for good
            if current is not None and not current.deleted:
                writes.append((key, current.user_id, None))
            else:
                counts.unchanged += 1
            continue
        payload = _project(key[0], row, pub_ids)
        deleted = payload is None
        if current is None and deleted and key not in forced:
            counts.unchanged += 1  # never shown to the viewer: nothing to retract
        elif (
            current is not None
            and current.deleted == deleted
            and current.payload == payload
            and current.user_id == row.user_id
        ):
            counts.unchanged += 1
        else:
            writes.append((key, row.user_id, payload))

    for _, _, payload in writes:
        if payload is None:
            counts.tombstoned += 1
        else:
            counts.published += 1
    if dry_run and dry_run_inserted is not None:
        dry_run_inserted.update(key for key, _, _ in writes if key not in existing and key[0] in REFERENCED_KINDS)
    if dry_run or not writes:
        return counts

    _upsert(writes, pub_ids=pub_ids, now=now)
    return counts


# One statement for the whole batch: rows travel as one JSON array (json.dumps is C, unlike per-value
# parameter quoting). Seq continues after the current maximum in the order given (we hold the publish lock).
_UPSERT_SQL = """
INSERT INTO publishing_published (pub_id, kind, source_id, user_id, payload, deleted, seq, updated_at, item)
SELECT r.pub_id, r.kind, r.source_id, r.user_id, r.payload, r.payload IS NULL, r.seq, %s, r.item
FROM jsonb_to_recordset(%s::jsonb) AS r(pub_id text, kind text, source_id bigint, user_id bigint, payload jsonb,
                                        seq bigint, item text)
ORDER BY r.seq
ON CONFLICT (kind, source_id) DO UPDATE SET
    user_id = EXCLUDED.user_id, payload = EXCLUDED.payload, deleted = EXCLUDED.deleted, seq = EXCLUDED.seq,
    updated_at = EXCLUDED.updated_at, item = EXCLUDED.item
"""


def _upsert(writes: list[tuple[Key, int, dict | None]], *, pub_ids: Mapping[Key, str], now: datetime) -> None:
    """INSERT … ON CONFLICT (kind, source_id) DO UPDATE of these rows with fresh, ascending seq and their
    rendered feed items; two queries (the current top seq, the upsert)."""
    top = Published.objects.aggregate(top=Max("seq"))["top"] or 0
    rows = [
        {"pub_id": pub_ids[key], "kind": str(key[0]), "source_id": key[1], "user_id": user_id, "payload": payload,
         "seq": seq, "item": feed_item_json(seq=seq, pub_id=pub_ids[key], kind=key[0], updated_at=now, payload=payload)}
        for seq, (key, user_id, payload) in enumerate(writes, start=top + 1)
    ]
    if connection.vendor != "postgresql":  # the SQLite demo: the ORM's upsert, same rows
        Published.objects.bulk_create(
            [Published(**row, deleted=row["payload"] is None, updated_at=now) for row in rows],
            update_conflicts=True,
            unique_fields=["kind", "source_id"],
            update_fields=["user", "payload", "deleted", "seq", "updated_at", "item"],
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_SQL, [now, json.dumps(rows)])


def publish_drain_batch(*, batch_size: int = DRAIN_BATCH_SIZE) -> int:
    """Claim up to batch_size outbox rows (SKIP LOCKED), publish their sources, delete them; one transaction.

    Repeated requests for the same source are coalesced into one projection. Returns rows claimed.
    """
    with transaction.atomic():
        claimed = list(
            PublishOutbox.objects.select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "kind", "source_id")[:batch_size]
        )
        if not claimed:
            return 0
        kind_ids: dict[str, set[int]] = defaultdict(set)
        for _, kind, source_id in claimed:
            kind_ids[kind].add(source_id)
        publish_sources(kind_ids=kind_ids)
        PublishOutbox.objects.filter(id__in=[row[0] for row in claimed]).delete()
    return len(claimed)


def publish_drain(*, batch_size: int = DRAIN_BATCH_SIZE, max_batches: int = 1000) -> int:
    """Drain the outbox batch by batch until it is empty (or max_batches); returns rows drained."""
    drained = 0
    for _ in range(max_batches):
        claimed = publish_drain_batch(batch_size=batch_size)
        drained += claimed
        if claimed < batch_size:
            break
    return drained
