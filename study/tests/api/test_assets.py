"""/api/study-sessions/{id}/assets: link and unlink documents; uniqueness with NULL role, also under a race."""


import pytest
from django.utils import timezone

from study.models import Document, SessionAsset
from study.tests import factories as f
from studyserver.testing import run_concurrently

pytestmark = pytest.mark.django_db


def test_link_document(api_client, user):
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    response = api_client.post(
        f"/api/study-sessions/{session.id}/assets",
        {"document_id": doc.id, "asset_type": "audio", "role": "pronunciation", "sort_order": 3},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["document_id"] == doc.id and body["asset_type"] == "audio"
    assert body["role"] == "pronunciation" and body["sort_order"] == 3
    detail = api_client.get(f"/api/study-sessions/{session.id}").json()
    assert [a["id"] for a in detail["assets"]] == [body["id"]]


def test_null_role_collides_with_null_role(api_client, user):
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    url = f"/api/study-sessions/{session.id}/assets/"
    payload = {"document_id": doc.id, "asset_type": "reference"}
    assert api_client.post(url, payload, format="json").status_code == 201
    response = api_client.post(url, {**payload, "role": None}, format="json")
    assert response.status_code == 409
    assert response.json()["error_code"] == "asset_already_linked"
    assert api_client.post(url, {**payload, "role": "reference"}, format="json").status_code == 201
    assert api_client.post(url, {**payload, "asset_type": "transcript"}, format="json").status_code == 201
    assert SessionAsset.objects.filter(session=session).count() == 3


@pytest.mark.parametrize(
    "payload",
    [{"asset_type": "gif"}, {"asset_type": "audio", "role": "singer"}, {"asset_type": "audio", "sort_order": 10**30},
     {"asset_type": "audio", "sort_order": "first"}, {}],
)  # fmt: skip
def test_bad_asset_input_is_400(api_client, user, payload):
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    body = {"document_id": doc.id, **payload} if payload else {}
    response = api_client.post(f"/api/study-sessions/{session.id}/assets", body, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"


def test_foreign_or_deleted_document_is_404(api_client, user, other_user):
    session = f.StudySessionFactory(user=user)
    url = f"/api/study-sessions/{session.id}/assets"
    for doc in (f.DocumentFactory(user=other_user), f.DocumentFactory(user=user, deleted_at=timezone.now())):
        response = api_client.post(url, {"document_id": doc.id, "asset_type": "audio"}, format="json")
        assert response.status_code == 404
    assert not SessionAsset.objects.exists()


def test_foreign_session_is_404(api_client, user, other_user):
    session = f.StudySessionFactory(user=other_user)
    doc = f.DocumentFactory(user=user)
    url = f"/api/study-sessions/{session.id}/assets"
    assert api_client.post(url, {"document_id": doc.id, "asset_type": "audio"}, format="json").status_code == 404
    asset = f.SessionAssetFactory(session=session)
    assert api_client.delete(f"{url}/{asset.id}").status_code == 404
    assert SessionAsset.objects.filter(pk=asset.id).exists()


def test_unlink_keeps_document_and_other_sessions_asset_is_404(api_client, user):
    asset = f.SessionAssetFactory(session=f.StudySessionFactory(user=user))
    other_session = f.StudySessionFactory(user=user)
    assert api_client.delete(f"/api/study-sessions/{other_session.id}/assets/{asset.id}").status_code == 404
    assert api_client.delete(f"/api/study-sessions/{asset.session_id}/assets/{asset.id}/").status_code == 204
    assert not SessionAsset.objects.exists()
    assert Document.objects.filter(pk=asset.document_id, deleted_at__isnull=True).exists()
    assert api_client.delete(f"/api/study-sessions/{asset.session_id}/assets/{asset.id}").status_code == 404
    assert api_client.delete(f"/api/study-sessions/{asset.session_id}/assets/abc").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_links_give_exactly_one_201(client_for):
    user = f.UserFactory()
    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    clients = [client_for(user) for _ in range(8)]

    def link(client) -> tuple:
        payload = {"document_id": doc.id, "asset_type": "audio"}
        response = client.post(f"/api/study-sessions/{session.id}/assets", payload, format="json")
        return response.status_code, response.json().get("error_code")

    results = run_concurrently(*(lambda c=c: link(c) for c in clients))
    assert sorted(results, key=str) == [(201, None)] + [(409, "asset_already_linked")] * 7
    assert SessionAsset.objects.filter(session=session).count() == 1


@pytest.mark.parametrize(
    ("asset_type", "role", "status", "filled"),
    [
        ("handwriting_png", "answer", "done", True),
        ("handwriting_png", None, "done", True),
        ("reference", None, "done", False),  # only handwriting snapshots carry OCR text to the session
        ("handwriting_png", "answer", "pending", False),  # the extraction fills it when it finishes
        ("handwriting_png", "answer", "failed", False),
    ],
)
def test_linking_an_extracted_snapshot_fills_ocr_text(api_client, user, asset_type, role, status, filled):
    session = f.StudySessionFactory(user=user, ocr_text="", user_corrected_text="내가 고친 글")
    doc = f.DocumentFactory(user=user, original_name="snap.png", file_format="png", content_type="image/png",
                            extract_status=status, extracted_text="손글씨 hello" if status == "done" else "")
    response = api_client.post(f"/api/study-sessions/{session.id}/assets",
                               {"document_id": doc.id, "asset_type": asset_type, "role": role}, format="json")
    assert response.status_code == 201, response.content
    detail = api_client.get(f"/api/study-sessions/{session.id}").json()
    assert detail["ocr_text"] == ("손글씨 hello" if filled else "")
    assert detail["user_corrected_text"] == "내가 고친 글"


def test_a_rejected_duplicate_link_changes_no_ocr_text(api_client, user):
    session = f.StudySessionFactory(user=user, ocr_text="")
    doc = f.DocumentFactory(user=user, extract_status="done", extracted_text="첫 글")
    f.SessionAssetFactory(session=session, document=doc, asset_type="handwriting_png", role="answer")
    response = api_client.post(f"/api/study-sessions/{session.id}/assets",
                               {"document_id": doc.id, "asset_type": "handwriting_png", "role": "answer"},
                               format="json")
    assert response.status_code == 409
    assert api_client.get(f"/api/study-sessions/{session.id}").json()["ocr_text"] == ""


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["the extraction", "the link"])
def test_a_snapshot_linked_while_its_extraction_finishes_fills_the_sessions_text(user, first):
    """The link read the document unlocked (pending) and the extraction filled only links already committed:
    neither put the text on the session."""
    from study.models import StudySession
    from study.services.extraction import _finish
    from study.services.sessions import session_asset_add
    from studyserver.testing import while_holding

    session = f.StudySessionFactory(user=user, ocr_text="")
    doc = f.DocumentFactory(user=user, original_name="snap.png", file_format="png", content_type="image/png",
                            extract_status="pending")

    def finish():
        assert _finish(doc.pk, status="done", text="손글씨 hello", error="") is not None

    def link():
        session_asset_add(session=session, document_id=doc.pk, asset_type="handwriting_png", role="answer")

    if first == "the extraction":
        while_holding(finish, then=link)
    else:
        while_holding(link, then=finish)
    assert StudySession.objects.get(pk=session.pk).ocr_text == "손글씨 hello"


def document_deleted_once_read(monkeypatch, module, document) -> None:
    """`module`'s document_get_live reads `document` live, and another request deletes it right after: what a link
    must notice under its lock."""
    read_live = module.document_get_live

    def deleted_right_after(**kwargs):
        found = read_live(**kwargs)
        Document.objects.filter(pk=document.pk).update(deleted_at=timezone.now())
        return found

    monkeypatch.setattr(module, "document_get_live", deleted_right_after)


def test_a_document_deleted_before_the_link_commits_is_404(api_client, user, monkeypatch):
    """Read live, then deleted by another request before the link's lock: nothing is linked."""
    from study.services import sessions

    session = f.StudySessionFactory(user=user)
    doc = f.DocumentFactory(user=user)
    document_deleted_once_read(monkeypatch, sessions, doc)
    response = api_client.post(f"/api/study-sessions/{session.id}/assets",
                               {"document_id": doc.id, "asset_type": "reference"}, format="json")
    assert (response.status_code, response.json()["error_code"]) == (404, "not_found")
    assert not SessionAsset.objects.exists()
