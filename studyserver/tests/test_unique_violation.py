"""violates_unique: which unique constraint an IntegrityError came from, on PostgreSQL and in SQLite's words."""

import sqlite3

import pytest
from django.db import IntegrityError, connection, transaction

from study.models import MemoCard, QuizSession
from study.tests.factories import MemoCardFactory
from studyserver.errors import violates_unique

DEDUP = "study_memocard_dedup_uniq"
CLIENT_UUID = "study_quizsession_client_uuid_uniq"


@pytest.mark.postgresql
@pytest.mark.django_db
def test_postgresql_names_the_constraint():
    card = MemoCardFactory()
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        MemoCardFactory(user=card.user, dedup_hash=card.dedup_hash)
    assert connection.vendor == "postgresql"
    assert violates_unique(raised.value, MemoCard, DEDUP)
    assert not violates_unique(raised.value, QuizSession, CLIENT_UUID)


def _sqlite_error(message: str) -> IntegrityError:
    error = IntegrityError(message)
    error.__cause__ = sqlite3.IntegrityError(message)  # as Django wraps it; it carries no diag
    return error


def test_sqlite_names_the_columns_of_the_constraint():
    dedup = _sqlite_error("UNIQUE constraint failed: study_memocard.user_id, study_memocard.dedup_hash")
    assert violates_unique(dedup, MemoCard, DEDUP)
    assert not violates_unique(dedup, QuizSession, CLIENT_UUID)
    uuid = _sqlite_error(
        "UNIQUE constraint failed: study_quizsession.client_session_uuid, study_quizsession.study_topic_id"
    )
    assert violates_unique(uuid, QuizSession, CLIENT_UUID)
    assert not violates_unique(_sqlite_error("UNIQUE constraint failed: study_memocard.id"), MemoCard, DEDUP)
