"""GET /api/study-sessions/groups: the certification and language trees, counts, fixed query count."""

import unicodedata
from datetime import timedelta

import pytest
from django.utils import timezone

from study.tests import factories as f

pytestmark = pytest.mark.django_db


def test_groups_tree(api_client, user, other_user):
    now = timezone.now()
    past, future = now - timedelta(hours=1), now + timedelta(days=1)
    cert = {"user": user, "study_type": "certification", "certification": "가스기사"}
    f.StudySessionFactory(**cert, subject="법규", topic="용기", review_state="weak", next_review_at=past)
    f.StudySessionFactory(**cert, subject="법규", topic="용기", next_review_at=future)
    f.StudySessionFactory(**cert, subject="법규", topic="배관", review_state="weak")
    f.StudySessionFactory(**cert, subject="안전", topic="", next_review_at=past)
    f.StudySessionFactory(user=user, study_type="certification", certification="산업안전기사", subject="a", topic="b")
    lang = {"user": user, "study_type": "language", "certification": "", "language_code": "ja", "learning_level": "N3"}
    with_audio = f.StudySessionFactory(**lang, subject="文法", topic="ように", review_state="weak")
    f.SessionAssetFactory(session=with_audio, asset_type="audio", role=None)
    f.SessionAssetFactory(session=with_audio, asset_type="audio", role="prompt")
    f.StudySessionFactory(**lang, subject="文法", topic="ように", next_review_at=past)
    video = f.StudySessionFactory(**lang, subject="読解", topic="")
    f.SessionAssetFactory(session=video, asset_type="video", role=None)
    f.StudySessionFactory(user=other_user, certification="가스기사", subject="법규", topic="용기")

    response = api_client.get("/api/study-sessions/groups")
    assert response.status_code == 200
    assert response.json() == {
        "by_type": {
            "certification": {
                "groups": [
                    {
                        "certification": "가스기사", "session_count": 4, "weak_count": 2, "due_count": 2,
                        "subjects": [
                            {
                                "subject": "법규", "session_count": 3, "weak_count": 2, "due_count": 1,
                                "topics": [
                                    {"topic": "배관", "session_count": 1, "weak_count": 1, "due_count": 0},
                                    {"topic": "용기", "session_count": 2, "weak_count": 1, "due_count": 1},
                                ],
                            },
                            {
                                "subject": "안전", "session_count": 1, "weak_count": 0, "due_count": 1,
                                "topics": [{"topic": "", "session_count": 1, "weak_count": 0, "due_count": 1}],
                            },
                        ],
                    },
                    {
                        "certification": "산업안전기사", "session_count": 1, "weak_count": 0, "due_count": 0,
                        "subjects": [
                            {"subject": "a", "session_count": 1, "weak_count": 0, "due_count": 0,
                             "topics": [{"topic": "b", "session_count": 1, "weak_count": 0, "due_count": 0}]},
                        ],
                    },
                ]
            },
            "language": {
                "groups": [
                    {
                        "language_code": "ja", "learning_level": "N3",
                        "subjects": [
                            {"subject": "文法", "topics": [
                                {"topic": "ように", "session_count": 2, "weak_count": 1, "due_count": 1,
                                 "has_audio": True, "has_video": False},
                            ]},
                            {"subject": "読解", "topics": [
                                {"topic": "", "session_count": 1, "weak_count": 0, "due_count": 0,
                                 "has_audio": False, "has_video": True},
                            ]},
                        ],
                    }
                ]
            },
        }
    }  # fmt: skip


def test_nfd_and_nfc_spellings_are_one_group(api_client):
    """A session sent from a Mac (decomposed Hangul, NFD) and one typed elsewhere (NFC) are one certification,
    subject and topic, and one language group."""
    cert = {"certification": "가스기사", "subject": "가스법규", "topic": "용기"}
    lang = {"study_type": "language", "language_code": "한국어", "learning_level": "초급", "subject": "문법",
            "topic": "조사"}
    for texts in (cert, lang):
        for spelling in ("NFC", "NFD"):
            body = {k: unicodedata.normalize(spelling, v) for k, v in texts.items()}
            assert api_client.post("/api/study-sessions", body, format="json").status_code == 201
    groups = api_client.get("/api/study-sessions/groups").json()["by_type"]
    assert groups["certification"]["groups"] == [
        {"certification": "가스기사", "session_count": 2, "weak_count": 0, "due_count": 0,
         "subjects": [{"subject": "가스법규", "session_count": 2, "weak_count": 0, "due_count": 0,
                       "topics": [{"topic": "용기", "session_count": 2, "weak_count": 0, "due_count": 0}]}]},
    ]
    assert groups["language"]["groups"] == [
        {"language_code": "한국어", "learning_level": "초급",
         "subjects": [{"subject": "문법", "topics": [{"topic": "조사", "session_count": 2, "weak_count": 0,
                                                     "due_count": 0, "has_audio": False, "has_video": False}]}]},
    ]


def test_empty_groups_and_slash(api_client):
    body = api_client.get("/api/study-sessions/groups/").json()
    assert body == {"by_type": {"certification": {"groups": []}, "language": {"groups": []}}}


@pytest.mark.parametrize("rows", [1, 30])
def test_groups_query_count_is_fixed(api_client, user, rows, django_assert_num_queries):
    for i in range(rows):
        f.StudySessionFactory(user=user, certification=f"c{i % 3}", subject=f"s{i}", topic=f"t{i}")
        f.StudySessionFactory(user=user, study_type="language", language_code="ja", subject=f"s{i}")
    with django_assert_num_queries(3):  # the token (with its user) + 2 grouped queries
        assert api_client.get("/api/study-sessions/groups").status_code == 200


def test_groups_requires_auth(anon_client):
    assert anon_client.get("/api/study-sessions/groups").status_code == 401


def test_audio_of_a_deleted_document_no_longer_counts(api_client, user):
    session = f.StudySessionFactory(user=user, study_type="language", language_code="ja", learning_level="N3",
                                    subject="聴解", topic="駅")
    asset = f.SessionAssetFactory(session=session, asset_type="audio", role="listening_source")

    def topic_row() -> dict:
        body = api_client.get("/api/study-sessions/groups").json()
        return body["by_type"]["language"]["groups"][0]["subjects"][0]["topics"][0]

    assert topic_row()["has_audio"] is True
    asset.document.deleted_at = timezone.now()
    asset.document.save(update_fields=["deleted_at"])
    row = topic_row()
    assert row["has_audio"] is False
    assert row["session_count"] == 1  # the session itself still counts
