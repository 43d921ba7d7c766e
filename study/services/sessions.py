"""Writes of study sessions and their assets (links to documents), including PNG snapshots."""

import operator
from collections.abc import Iterable
from functools import reduce

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from study.models import Document, SessionAsset, StudySession
from study.models.documents import ExtractStatus
from study.models.sessions import AssetRole, AssetType
from study.selectors.documents import document_get_live
from study.textnorm import nfc
from study.uploads import checked_upload_size, is_png
from studyserver.errors import AssetAlreadyLinked, NotFound, UnsupportedType, violates_unique

from .documents import document_store_atomically
from .topics import topic_get_live

TOPIC_KEY = "study_topic_id"
LINK_CONSTRAINT = "study_sessionasset_link_uniq"
# Stored NFC: /groups groups by them and the list filters on them, so an NFD spelling (macOS, iOS) of the same
# certification or subject must be the same text.
NFC_FIELDS = ("certification", "language_code", "learning_level", "subject", "topic")


def _values(user: AbstractBaseUser, data: dict) -> dict:
    """The fields to write: texts of NFC_FIELDS normalised, `study_topic_id` turned into `study_topic` (the
    user's live topic, locked until the caller's transaction ends, else 404; None detaches)."""
    values = {field: nfc(value) if field in NFC_FIELDS else value for field, value in data.items()}
    if TOPIC_KEY in values:
        topic_id = values.pop(TOPIC_KEY)
        values["study_topic"] = None if topic_id is None else topic_get_live(user=user, topic_id=topic_id, lock=True)
    return values


def _session_lock(session: StudySession) -> None:
    """Lock the session's row until the transaction ends; a session deleted meanwhile → 404.

    Every write that must not outlive a concurrent delete takes this lock first, so one of the two waits
    for the other: the foreign keys are deferred, so an insert alone does not lock the session row.
    FOR NO KEY UPDATE: the writes serialise among themselves, while foreign-key checks of rows that refer
    to the session (they take KEY SHARE) do not wait.
    """
    if not StudySession.objects.select_for_update(no_key=True).filter(pk=session.pk).exists():
        raise NotFound("Study session not found.")


def session_create(*, user: AbstractBaseUser, data: dict) -> StudySession:
    """Create a session from validated fields (`study_topic_id` must be the user's live topic); NFC_FIELDS are
    stored NFC."""
    with transaction.atomic():
        values = _values(user, data)
        return StudySession.objects.create(user=user, **values)


def session_update(*, session: StudySession, data: dict) -> StudySession:
    """Change only the fields sent (NFC_FIELDS stored NFC); `study_topic_id: None` detaches the topic;
    `updated_at` moves."""
    with transaction.atomic():
        _session_lock(session)
        values = _values(session.user, data)
        for field, value in values.items():
            setattr(session, field, value)
        session.save(update_fields=[*values, "updated_at"])
    return session


def session_delete(*, session: StudySession) -> None:
    """Delete the session and its asset links; the documents stay; already deleted → 404."""
    with transaction.atomic():
        # Locked before the links are collected: a link being added commits first (and is deleted here)
        # or waits and finds the session gone, instead of failing this delete's foreign key at commit.
        _session_lock(session)
        session.delete()


def _newest_snapshot_text() -> QuerySet:
    """For a subquery: the text of the outer session's newest extracted handwriting snapshot (a live document)."""
    return (
        SessionAsset.objects.filter(
            session=OuterRef("pk"),
            asset_type=AssetType.HANDWRITING_PNG,
            document__extract_status=ExtractStatus.DONE,
            document__deleted_at__isnull=True,
        )
        .exclude(document__extracted_text="")
        .order_by("-id")
        .values("document__extracted_text")[:1]
    )


def sessions_ocr_text_fill(*, session_ids) -> int:
    """Each of these sessions gets as `ocr_text` the text of its newest extracted handwriting snapshot (never
    `user_corrected_text`), however the extractions finished: an older snapshot OCR'd last does not replace a
    newer one's text. Sessions without such a text are left as they are. Returns how many changed."""
    newest = _newest_snapshot_text()
    return (
        StudySession.objects.filter(pk__in=session_ids)
        .filter(Exists(newest))
        .update(ocr_text=Subquery(newest), updated_at=timezone.now())
    )


def sessions_ocr_text_forget(*, assets: Iterable[SessionAsset]) -> int:
    """These asset links are gone (unlinked) or their documents deleted: a session whose `ocr_text` is the text of
    one of those snapshots gets its newest remaining snapshot's text instead, or none. A text the app wrote itself
    (PATCH) is not a snapshot's, and stays. Returns how many sessions changed.

    One read of the snapshots' texts and one UPDATE, however many links: the admin's "delete selected" read each
    document's text (deferred on its list) and wrote each text's sessions apart."""
    snapshots = [(asset.document_id, asset.session_id) for asset in assets
                 if asset.asset_type == AssetType.HANDWRITING_PNG]
    if not snapshots:
        return 0
    texts = dict(
        Document.objects.filter(pk__in={document_id for document_id, _ in snapshots}, extract_status=ExtractStatus.DONE)
        .exclude(extracted_text="").values_list("pk", "extracted_text")
    )
    gone: dict[str, set[int]] = {}
    for document_id, session_id in snapshots:
        if document_id in texts:
            gone.setdefault(texts[document_id], set()).add(session_id)
    if not gone:
        return 0
    holding = reduce(operator.or_, (Q(pk__in=session_ids, ocr_text=text) for text, session_ids in gone.items()))
    return StudySession.objects.filter(holding).update(
        ocr_text=Coalesce(Subquery(_newest_snapshot_text()), Value("")), updated_at=timezone.now()
    )


def session_links_replaced(*, before: Iterable[SessionAsset], after: Iterable[SessionAsset]) -> None:
    """Links changed outside the API (the admin: a link's document, asset type or session replaced, a link added):
    the snapshots they held before no longer give their sessions' OCR text, and the extracted ones they hold now do,
    as the API's unlink and link have it. `before` holds the links as they were (unsaved rows will do)."""
    sessions_ocr_text_forget(assets=before)
    session_ids = {asset.session_id for asset in after if asset.asset_type == AssetType.HANDWRITING_PNG}
    if session_ids:
        sessions_ocr_text_fill(session_ids=session_ids)


def _link(*, session: StudySession, document: Document, asset_type: str, role: str | None, sort_order: int):
    """Link `document` to `session`; the session or the document deleted meanwhile → 404, a duplicate link → 409."""
    try:
        with transaction.atomic():
            # The document's row lock first, then the session's: extraction takes them in this order too (it fills
            # the sessions linking the document it locked). An extraction finishing meanwhile has then either
            # committed, and its status is read here as done, or it waits and finds this link. Read unlocked, a
            # link made while an extraction finished was neither, and its session got no text.
            status = (Document.objects.select_for_update(no_key=True).filter(pk=document.pk, deleted_at__isnull=True)
                      .values_list("extract_status", flat=True).first())
            if status is None:
                raise NotFound("Document not found.")
            _session_lock(session)
            asset = SessionAsset.objects.create(
                session=session, document=document, asset_type=asset_type, role=role, sort_order=sort_order
            )
            # A snapshot extracted before this link: its text arrives now, as extraction would have put it.
            extracted = status == ExtractStatus.DONE
            if asset_type == AssetType.HANDWRITING_PNG and extracted and sessions_ocr_text_fill(
                session_ids=[session.pk]
            ):
                session.refresh_from_db(fields=["ocr_text", "updated_at"])
            return asset
    except IntegrityError as exc:
        if violates_unique(exc, SessionAsset, LINK_CONSTRAINT):
            raise AssetAlreadyLinked() from None
        raise


def session_asset_add(
    *, session: StudySession, document_id: int, asset_type: str, role: str | None = None, sort_order: int = 0
) -> SessionAsset:
    """Link one of the user's live documents; a duplicate (NULL role is a value) → 409, also under a race."""
    document = document_get_live(user=session.user, document_id=document_id)
    if document is None:
        raise NotFound("Document not found.")
    return _link(session=session, document=document, asset_type=asset_type, role=role, sort_order=sort_order)


def session_asset_remove(*, session: StudySession, asset_id: int) -> None:
    """Unlink an asset of this session (the document is kept); another session's asset → 404. An unlinked
    snapshot's text is no longer the session's OCR text."""
    with transaction.atomic():
        asset = SessionAsset.objects.filter(session=session, pk=asset_id).select_related("document").first()
        if asset is None or not SessionAsset.objects.filter(pk=asset.pk).delete()[0]:  # (or unlinked meanwhile)
            raise NotFound("Asset not found.")
        sessions_ocr_text_forget(assets=[asset])


def session_snapshot_create(*, session: StudySession, upload: UploadedFile, sort_order: int = 0) -> SessionAsset:
    """Store a PNG (checked by its content) as a document and link it as handwriting_png/answer, atomically."""
    checked_upload_size(upload)
    if not is_png(upload):
        raise UnsupportedType("Snapshots must be PNG images.")

    def link(document: Document) -> SessionAsset:
        return _link(
            session=session,
            document=document,
            asset_type=AssetType.HANDWRITING_PNG,
            role=AssetRole.ANSWER,
            sort_order=sort_order,
        )

    # Checked above to be a PNG whatever its name says ("snapshot", "page.jpg"): stored and served as one.
    return document_store_atomically(user=session.user, upload=upload, then=link, verified_format="png")
