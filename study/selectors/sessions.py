"""Reads of study sessions: the list with assets, and the grouped tree of /groups."""

import functools

from django.contrib.auth.models import AbstractBaseUser
from django.db import models
from django.db.models import Count, Prefetch, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from study.models import SessionAsset, StudySession
from study.models.sessions import AssetType, ReviewState, StudyType
from studyserver.sqljson import fetch_row, iso_datetime_sql, json_array_sql, json_list_sql


def live_assets() -> QuerySet[SessionAsset]:
    """Asset links whose document is live (soft-deleted documents are hidden), in display order."""
    return SessionAsset.objects.filter(document__deleted_at__isnull=True).order_by("sort_order", "id")


def sessions_with_assets(*, user: AbstractBaseUser) -> QuerySet[StudySession]:
    """The user's sessions, newest first, with the assets of live documents prefetched."""
    return (
        StudySession.objects.filter(user=user)
        .prefetch_related(Prefetch("assets", queryset=live_assets()))
        .order_by("-created_at", "-id")
    )


def session_assets_attach(rows: list[dict]) -> list[dict]:
    """Attach to each session row (a dict with `id`) its live-document assets as `assets`: one query."""
    by_session: dict[int, list[dict]] = {}
    for row in rows:
        row["assets"] = by_session[row["id"]] = []
    if by_session:
        assets = (
            live_assets()
            .filter(session_id__in=list(by_session))
            .values("session_id", "id", "document_id", "asset_type", "role", "sort_order", "created_at")
        )
        for asset in assets:
            by_session[asset.pop("session_id")].append(asset)
    return rows


@functools.lru_cache
def _json_fields(fields: tuple[str, ...], zone: str) -> str:
    """The select list of a session body (built once per field list and time zone, the cache key)."""
    return ", ".join(_json_field(name) for name in fields)


def _json_field(name: str) -> str:
    """Select-list entry for one session body field (`o` is the session row); `assets` as a nested list."""
    if name == "assets":
        assets = json_list_sql(
            "SELECT a.* FROM study_sessionasset a JOIN study_document d ON d.id = a.document_id"
            " WHERE a.session_id = o.id AND d.deleted_at IS NULL",
            fields=f"n.id, n.document_id, n.asset_type, n.role, n.sort_order, {iso_datetime_sql('n.created_at')}"
            " AS created_at",
            order_by="n.sort_order, n.id",
        )
        return f"{assets} AS assets"
    field = StudySession._meta.get_field(name)
    if isinstance(field, models.DateTimeField):
        return f"{iso_datetime_sql('o.' + field.column)} AS {name}"
    return f"o.{field.column} AS {name}"


def sessions_page_json(*, queryset: QuerySet[StudySession], fields: list[str], offset: int, limit: int) -> tuple:
    """(count, JSON text of the bodies of queryset[offset:offset + limit]) in the queryset's order, one statement.

    `fields` are the body's keys in order (StudySessionSerializer's); the database renders them as the
    serializer does, with the live-document assets of each session.
    """
    if not queryset.query.order_by:
        raise ValueError("sessions_page_json needs an ordered queryset")
    # Number the filtered ids in the queryset's order (narrow rows: the sort and the count stay cheap), then
    # read the page's whole rows by id.
    numbered = queryset.prefetch_related(None).values("id").annotate(
        _n=Window(RowNumber(), order_by=list(queryset.query.order_by))
    )
    rows_sql, params = numbered.query.sql_with_params()
    page = json_array_sql(
        f"SELECT s.*, f._n FROM f JOIN {StudySession._meta.db_table} s ON s.id = f.id WHERE f._n > %s AND f._n <= %s",
        fields=_json_fields(tuple(fields), timezone.get_current_timezone_name()),
        order_by="o._n",
    )
    sql = f"WITH f AS MATERIALIZED ({rows_sql}) SELECT (SELECT count(*) FROM f), ({page})"
    return fetch_row(sql, [*params, offset, offset + limit])


# Assets of soft-deleted documents are hidden from session bodies; /groups must not count them either.
_LIVE_ASSET = {"assets__document__deleted_at__isnull": True}


def _counts(now) -> dict:
    return {
        "session_count": Count("id", distinct=True),
        "weak_count": Count("id", filter=Q(review_state=ReviewState.WEAK), distinct=True),
        "due_count": Count("id", filter=Q(next_review_at__lte=now), distinct=True),
    }


def _add(target: dict, row: dict) -> None:
    for key in ("session_count", "weak_count", "due_count"):
        target[key] += row[key]


def _certification_tree(user: AbstractBaseUser, now) -> list[dict]:
    rows = (
        StudySession.objects.filter(user=user, study_type=StudyType.CERTIFICATION)
        .values("certification", "subject", "topic")
        .annotate(**_counts(now))
        .order_by("certification", "subject", "topic")
    )
    groups: dict[str, dict] = {}
    for row in rows:
        zero = {"session_count": 0, "weak_count": 0, "due_count": 0}
        group = groups.setdefault(row["certification"], {"certification": row["certification"], **zero, "subjects": {}})
        subject = group["subjects"].setdefault(row["subject"], {"subject": row["subject"], **zero, "topics": []})
        topic = {k: row[k] for k in ("topic", "session_count", "weak_count", "due_count")}
        subject["topics"].append(topic)
        _add(subject, row)
        _add(group, row)
    for group in groups.values():
        group["subjects"] = list(group["subjects"].values())
    return list(groups.values())


def _language_tree(user: AbstractBaseUser, now) -> list[dict]:
    rows = (
        StudySession.objects.filter(user=user, study_type=StudyType.LANGUAGE)
        .values("language_code", "learning_level", "subject", "topic")
        .annotate(
            **_counts(now),
            audio=Count("assets", filter=Q(assets__asset_type=AssetType.AUDIO, **_LIVE_ASSET)),
            video=Count("assets", filter=Q(assets__asset_type=AssetType.VIDEO, **_LIVE_ASSET)),
        )
        .order_by("language_code", "learning_level", "subject", "topic")
    )
    groups: dict[tuple, dict] = {}
    for row in rows:
        key = (row["language_code"], row["learning_level"])
        group = groups.setdefault(
            key, {"language_code": key[0], "learning_level": key[1], "subjects": {}}
        )
        subject = group["subjects"].setdefault(row["subject"], {"subject": row["subject"], "topics": []})
        subject["topics"].append(
            {
                **{k: row[k] for k in ("topic", "session_count", "weak_count", "due_count")},
                "has_audio": row["audio"] > 0,
                "has_video": row["video"] > 0,
            }
        )
    for group in groups.values():
        group["subjects"] = list(group["subjects"].values())
    return list(groups.values())


def session_groups(*, user: AbstractBaseUser) -> dict:
    """The certification and language trees of the user's sessions (two grouped queries)."""
    now = timezone.now()
    return {
        "by_type": {
            "certification": {"groups": _certification_tree(user, now)},
            "language": {"groups": _language_tree(user, now)},
        }
    }
