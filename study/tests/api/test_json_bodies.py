"""The list bodies PostgreSQL builds (studyserver.sqljson) equal their Python twins, filter by filter."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from conftest import use_python_twins
from study.tests import factories as f

pytestmark = pytest.mark.django_db


def both_bodies(client, monkeypatch, url: str) -> tuple:
    """(PostgreSQL-built response, Python twin response) of one GET."""
    built = client.get(url)
    with monkeypatch.context() as patch:
        use_python_twins(patch)
        twin = client.get(url)
    assert built.status_code == twin.status_code == 200, (built.content[:200], twin.content[:200])
    return built, twin


@pytest.fixture
def cards(user, other_user):
    """Due, scheduled, mastered, new, pending, deleted and foreign cards; evidence; question and manual groups."""
    now = timezone.now()
    question = f.QuestionFactory(study_topic__user=user, question_text="LNG의 주성분은? \"따옴표\" \\ 줄\n바꿈",
                                 choices=["메탄", "에탄"], correct_choice=1)
    made = []
    for n in range(12):
        card = f.MemoCardFactory(
            user=user,
            source_question=question if n % 3 == 0 else None,
            source_kind="question" if n % 3 == 0 else "manual",
            format="cloze" if n % 2 else "qa",
            needs_review=n in (4, 9),
            cue=f"큐 {n} 😀\u2028", fact=f"사실 {n}", cloze_text="{{c1::메탄}}" if n % 2 else "",
            extra={"material": ["", "가스 기초", "안전"][n % 3]} if n % 3 else {},
        )
        made.append(card)
        for k in range(n % 3):
            f.CardEvidenceFactory(card=card, source_type="explanation", source_id=None if k else n,
                                  snippet=f"근거 {n}.{k} \t<b>")
    f.CardProgressFactory(user=user, card=made[1], review_stage=2, due_at=now - timedelta(hours=3))
    f.CardProgressFactory(user=user, card=made[2], review_stage=1, due_at=now - timedelta(days=2))
    f.CardProgressFactory(user=user, card=made[3], review_stage=0, due_at=now + timedelta(days=2))
    f.CardProgressFactory(user=user, card=made[5], review_stage=4, due_at=None)
    f.CardProgressFactory(user=user, card=made[6], review_stage=3, due_at=now - timedelta(hours=3))
    made[7].deleted_at = now
    made[7].save(update_fields=["deleted_at"])
    f.MemoCardFactory(user=other_user)
    return made


@pytest.mark.parametrize(
    "url",
    [
        "/api/study-cards/due",
        "/api/study-cards/due?limit=2",
        "/api/study-cards/due?limit=3",
        "/api/study-cards",
        "/api/study-cards?needs_review=true",
        "/api/study-cards?needs_review=false&format=cloze",
        "/api/study-cards?format=qa&limit=4",
    ],
)
def test_card_bodies(api_client, monkeypatch, cards, url):
    built, twin = both_bodies(api_client, monkeypatch, url)
    assert built.json() == twin.json()
    assert built["Content-Type"] == twin["Content-Type"] == "application/json"


def test_due_order_scheduled_then_new(api_client, cards):
    """Due by date (ties by id), then never-rated approved live cards by id; the limit cuts the new half."""
    body = api_client.get("/api/study-cards/due").json()
    assert [c["id"] for c in body] == [cards[n].id for n in (2, 1, 6, 0, 8, 10, 11)]
    assert [c["review_stage"] for c in body] == [1, 2, 3, None, None, None, None]
    assert [c["id"] for c in api_client.get("/api/study-cards/due?limit=4").json()] == [
        cards[n].id for n in (2, 1, 6, 0)
    ]


@pytest.fixture
def sessions(user, other_user):
    now = datetime(2026, 3, 8, 6, 30, 0, tzinfo=UTC)  # around a US DST change
    made = []
    for n in range(9):
        session = f.StudySessionFactory(
            user=user, study_type="language" if n % 3 == 0 else "certification",
            metadata={"k": n, "한": [1, None, "x"]}, strokes_json={"s": [[n, 2.5]]} if n % 2 else {},
            review_state=["weak", "learning", None][n % 3],
            next_review_at=None if n % 4 == 0 else now + timedelta(hours=n, microseconds=n * 1000),
            last_quiz_at=None if n % 2 else now - timedelta(days=n),
        )
        made.append(session)
        if n % 2:
            f.SessionAssetFactory(session=session, asset_type="audio", sort_order=2)
            f.SessionAssetFactory(session=session, asset_type="reference", role="prompt", sort_order=1)
            f.SessionAssetFactory(session=session, document__deleted_at=timezone.now())
    f.StudySessionFactory(user=other_user)
    return made


@pytest.mark.parametrize("time_zone", ["Asia/Seoul", "UTC", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize(
    "url",
    [
        "/api/study-sessions",
        "/api/study-sessions?limit=2&offset=3",
        "/api/study-sessions?limit=4&offset=2&order=next_review_at&study_type=certification",
        "/api/study-sessions?order=last_quiz_at",
        "/api/study-sessions?asset_type=audio&limit=1",
        "/api/study-sessions?review_state=weak&offset=50",
        # 가스기사 decomposed (NFD): the factory's certification, stored NFC
        "/api/study-sessions?certification=%E1%84%80%E1%85%A1%E1%84%89%E1%85%B3%E1%84%80%E1%85%B5%E1%84%89%E1%85%A1",
    ],
)
def test_session_pages(settings, api_client, monkeypatch, sessions, time_zone, url):
    settings.TIME_ZONE = time_zone
    built, twin = both_bodies(api_client, monkeypatch, url)
    assert built.json() == twin.json()
    assert built.json()["count"] == twin.json()["count"] > 0


@pytest.mark.parametrize("url", ["/api/study-cards/due", "/api/study-cards", "/api/study-sessions"])
def test_the_browsable_api_still_renders_html(api_client, cards, url):
    """Only a JSON client gets the PostgreSQL-built body; a browser gets DRF's page (through the twin)."""
    page = api_client.get(url, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"Django REST framework" in page.content
    assert api_client.get(url, HTTP_ACCEPT="application/xml").status_code == 406
