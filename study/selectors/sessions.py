"""Reads of study sessions: the list with assets, and the grouped tree of /groups."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from study.models import SessionAsset, StudySession
from study.models.sessions import AssetType, ReviewState, StudyType


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
