"""sweep_orphan_files: stored upload files with no document row are deleted once past the grace period."""

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from study.services.documents import _store, document_orphan_files_sweep
from study.tests.factories import DocumentFactory
from studyserver.testing import stored_files

HOUR = 3600


def run(*args) -> str:
    out = StringIO()
    call_command("sweep_orphan_files", *args, stdout=out)
    return out.getvalue()


def age(media_root: Path, name: str, seconds: int) -> None:
    """Backdate a stored file's modification time by `seconds`."""
    then = time.time() - seconds
    os.utime(media_root / name, (then, then))


def orphan(media_root: Path, name: str, *, seconds_old: int = 2 * HOUR) -> str:
    """A stored file with no row, as a worker killed before its commit leaves it."""
    stored = default_storage.save(name, ContentFile(b"left behind"))
    age(media_root, stored, seconds_old)
    return stored


def names(media_root: Path) -> set[str]:
    return {p.relative_to(media_root).as_posix() for p in stored_files(media_root)}


@pytest.mark.django_db
def test_files_of_live_and_soft_deleted_documents_are_kept(user, _isolated_media):
    live = DocumentFactory(user=user)
    soft_deleted = DocumentFactory(user=user, deleted_at=timezone.now())
    for document in (live, soft_deleted):
        age(_isolated_media, document.file.name, 2 * HOUR)
    stray = orphan(_isolated_media, "documents/2026/11/0123abcd.txt")

    out = run()

    assert names(_isolated_media) == {live.file.name, soft_deleted.file.name}
    assert "examined 3, orphans 1, deleted 1" in out
    assert stray not in out  # names are listed only with --verbosity 2 or --dry-run


@pytest.mark.django_db
def test_an_upload_stored_without_its_row_is_deleted_after_the_grace_period(_isolated_media):
    # What `document_store_atomically` leaves when the process dies between storing and committing.
    stored = _store(SimpleUploadedFile("note.txt", b"LNG is stored at -162 C.", content_type="text/plain"))
    age(_isolated_media, stored.path, 61 * 60)

    out = run("--verbosity", "2")

    assert stored_files(_isolated_media) == []
    assert f"deleted {stored.path}" in out


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
def test_verbosity_0_prints_nothing_even_on_a_terminal(_isolated_media):
    orphan(_isolated_media, "documents/2026/11/0123abcd.txt")
    out = Terminal()
    call_command("sweep_orphan_files", "-v", "0", stdout=out)
    assert out.getvalue() == ""
    assert names(_isolated_media) == set()


@pytest.mark.django_db
def test_an_orphan_younger_than_the_grace_period_is_kept(_isolated_media):
    fresh = orphan(_isolated_media, "documents/2026/11/fresh.txt", seconds_old=59 * 60)
    ten_minutes = orphan(_isolated_media, "documents/2026/11/ten.txt", seconds_old=10 * 60)

    out = run()

    assert names(_isolated_media) == {fresh, ten_minutes}
    assert "orphans 0, deleted 0, kept 2 unreferenced younger than 60 min" in out


@pytest.mark.django_db
def test_the_grace_period_option_draws_the_line(_isolated_media):
    kept = orphan(_isolated_media, "documents/2026/11/two.txt", seconds_old=2 * 60)
    orphan(_isolated_media, "documents/2026/11/ten.txt", seconds_old=10 * 60)

    run("--older-than-minutes", "5")

    assert names(_isolated_media) == {kept}


@pytest.mark.django_db
def test_dry_run_lists_the_orphan_and_deletes_nothing(user, _isolated_media):
    document = DocumentFactory(user=user)
    age(_isolated_media, document.file.name, 2 * HOUR)
    stray = orphan(_isolated_media, "documents/2026/11/0123abcd.txt")

    out = run("--dry-run")

    assert f"would delete {stray}" in out
    assert document.file.name not in out
    assert "dry run: sweep_orphan_files: examined 2, orphans 1, deleted 0" in out
    assert names(_isolated_media) == {document.file.name, stray}


@pytest.mark.django_db
def test_files_outside_the_uploads_directory_are_not_touched(_isolated_media):
    outside = {
        orphan(_isolated_media, "bench/seed-note.txt"),
        orphan(_isolated_media, "documents-archive/2020/01/old.txt"),
        orphan(_isolated_media, "documents.txt"),
    }
    inside = orphan(_isolated_media, "documents/2026/11/0123abcd.txt")

    out = run()

    assert names(_isolated_media) == outside
    assert inside not in names(_isolated_media)
    assert "examined 1, orphans 1, deleted 1" in out


@pytest.mark.django_db
def test_nothing_uploaded_yet_is_not_an_error():
    assert "examined 0, orphans 0, deleted 0" in run()


@pytest.mark.django_db
def test_names_are_checked_in_batches_not_one_query_per_file(
    user, _isolated_media, django_assert_max_num_queries, django_assert_num_queries
):
    documents = [DocumentFactory(user=user) for _ in range(5)]
    for document in documents:
        age(_isolated_media, document.file.name, 2 * HOUR)
    for i in range(30):
        orphan(_isolated_media, f"documents/2026/{1 + i % 3:02d}/{i:04d}.txt")

    with django_assert_max_num_queries(1):
        dry = document_orphan_files_sweep(dry_run=True)
    assert (dry.examined, dry.orphans, dry.deleted) == (35, 30, 0)

    with django_assert_num_queries(4):  # 35 names in batches of 10
        swept = document_orphan_files_sweep(batch_size=10)
    assert (swept.examined, swept.orphans, swept.deleted) == (35, 30, 30)
    assert names(_isolated_media) == {d.file.name for d in documents}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value"),
    [("--batch-size", "0"), ("--batch-size", "100001"), ("--older-than-minutes", "0"),
     ("--older-than-minutes", "2000000000")],
)
def test_out_of_range_options_are_refused(_isolated_media, option, value):
    stray = orphan(_isolated_media, "documents/2026/11/0123abcd.txt")
    with pytest.raises(CommandError):
        run(option, value)
    assert names(_isolated_media) == {stray}


@pytest.mark.django_db
def test_beat_sweeps_orphan_files_daily(user, _isolated_media, settings):
    """Nobody has to remember the command: beat sends the sweep once a day (to the slow queue: it lists the store)."""
    from celery.schedules import crontab

    from study.tasks import orphan_files_sweep

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == orphan_files_sweep.name)
    assert entry["schedule"] == crontab(hour=4, minute=17)  # a time of day: a daily restart of beat does not skip it
    kept = DocumentFactory(user=user)
    age(_isolated_media, kept.file.name, 2 * HOUR)
    old = orphan(_isolated_media, "documents/2026/11/old.txt")
    young = orphan(_isolated_media, "documents/2026/11/young.txt", seconds_old=60)

    assert orphan_files_sweep.apply().get() == 1

    assert names(_isolated_media) == {kept.file.name, young}
    assert old not in names(_isolated_media)


@pytest.mark.django_db
def test_the_newest_months_are_swept_first(_isolated_media):
    """A sweep cut short by its time limit has done the months where recent failures leave files."""
    for month in ("2025/12", "2026/01", "2026/11"):
        orphan(_isolated_media, f"documents/{month}/x.txt")
    seen: list[str] = []
    document_orphan_files_sweep(batch_size=1, on_batch=lambda totals, names: seen.extend(names))
    assert seen == ["documents/2026/11/x.txt", "documents/2026/01/x.txt", "documents/2025/12/x.txt"]


@pytest.mark.django_db
def test_a_file_the_store_will_not_delete_is_skipped_and_the_sweep_goes_on(_isolated_media, monkeypatch, caplog):
    """It stopped the sweep at that file, every day: the files after it, and every older month, were never swept,
    and the command ended in a traceback."""
    from django.core.files.storage import FileSystemStorage

    stuck = orphan(_isolated_media, "documents/2026/05/aaa.txt")
    after = [orphan(_isolated_media, f"documents/2026/05/b{n}.txt") for n in range(2)]
    older = orphan(_isolated_media, "documents/2025/01/old.txt")
    delete = FileSystemStorage.delete

    def refuse(storage, name):
        if name == stuck:
            raise PermissionError(13, "Permission denied")
        return delete(storage, name)

    monkeypatch.setattr(FileSystemStorage, "delete", refuse)
    out = StringIO()
    with pytest.raises(CommandError, match="1 orphan file.s. could not be deleted"):
        call_command("sweep_orphan_files", stdout=out)
    assert names(_isolated_media) == {stuck}
    assert "orphans 4, deleted 3" in out.getvalue()
    assert f"orphan file {stuck} not deleted: PermissionError" in caplog.text
    assert not any(name in names(_isolated_media) for name in [*after, older])


@pytest.mark.django_db
def test_a_store_that_is_down_stops_the_sweep_for_a_retry(_isolated_media, monkeypatch):
    """A failure of the whole store is not one file's: the daily task retries later (its RETRY), as extraction
    does, instead of logging every file as undeletable."""
    from botocore.exceptions import ClientError
    from django.core.files.storage import FileSystemStorage

    from study.store import StorageUnavailable

    orphan(_isolated_media, "documents/2026/05/aaa.txt")

    def busy(storage, name):
        raise ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "DeleteObject")

    monkeypatch.setattr(FileSystemStorage, "delete", busy)
    with pytest.raises(StorageUnavailable):
        document_orphan_files_sweep()
