"""A reviewer works through the card review queue in real Chromium (Playwright) against the live server."""

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from publishing.models import Published, PublishOutbox
from study.models import MemoCard
from study.services.cards import card_candidate_create, card_create
from study.tests.factories import QuestionFactory, StudyTopicFactory, UserFactory

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "pw-for-tests-1"
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"


@pytest.fixture
def page(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test stay synchronous.
    # Set for this test only: subprocesses of other tests (check --deploy) must not inherit it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="ko-KR")
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # While Playwright's loop runs, the ORM works on a context-local connection: close it here.
            connections.close_all()


def published_or_pending(card_id: int) -> Published | None:
    """The card's publish request was recorded: still in the outbox, or already drained into Published."""
    row = Published.objects.filter(kind="study_card", source_id=card_id).first()
    if row is None:
        assert PublishOutbox.objects.filter(kind="study_card", source_id=card_id).exists()
    return row


def test_reviewer_works_through_the_queue(live_server, page):
    UserFactory(username="reviewer", is_staff=True, is_superuser=True)
    learner = UserFactory(username="gas-learner")
    topic = StudyTopicFactory(user=learner, name="가스기사 필기")
    q1 = QuestionFactory(study_topic=topic, question_text="LNG(액화천연가스)의 주성분은 무엇인가?",
                         choices=["메탄", "에탄", "프로판", "부탄"], correct_choice=1)
    q2 = QuestionFactory(study_topic=topic, question_text="도시가스에 첨가하는 부취제로 옳은 것은?",
                         choices=["THT", "CO", "H2S", "N2"], correct_choice=1)
    edited = card_candidate_create(
        question=q1, card_format="qa", cue="LNG의 주성분은?", fact="메탄",
        evidence=[{"source_type": "explanation", "source_id": q1.pk,
                   "snippet": "LNG는 메탄(CH₄)을 주성분으로 하는 천연가스를 영하 162℃로 냉각해 액화한 것이다."}],
    )
    cloze = card_candidate_create(
        question=q1, card_format="cloze", cue="LNG 액화 온도", fact="영하 162℃",
        cloze_text="LNG는 천연가스를 ____로 냉각하여 액화한 것이다.",
        evidence=[{"source_type": "document", "source_id": 3, "snippet": "천연가스는 영하 162℃에서 액화된다."}],
    )
    odorant = card_candidate_create(
        question=q2, card_format="qa", cue="도시가스 부취제의 예는?", fact="THT (테트라하이드로티오펜)",
        evidence=[{"source_type": "question", "source_id": q2.pk, "snippet": "부취제: THT, TBM, DMS"}],
    )
    doomed = card_candidate_create(question=q2, card_format="qa", cue="부취제 냄새 감지 농도는?", fact="1/1000")
    card_create(user=learner, card_format="qa", cue="가스 비중 기준은?", fact="공기", material="가스 물성")
    base = live_server.url

    # log in and see the pending count on the admin index
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    summary = page.locator("#card-review-summary")
    assert summary.locator(".card-review-count").inner_text() == "4"

    # open the queue: one group per question, the question text shown once
    summary.get_by_role("link", name="Open the review queue").click()
    page.wait_for_selector("#review-queue")
    group1 = page.locator(f"section[data-question-id='{q1.pk}']")
    assert "LNG(액화천연가스)의 주성분은 무엇인가?" in group1.locator("h2").inner_text()
    assert "1. 메탄" in group1.locator(".rq-answer").inner_text()
    assert group1.locator("article.rq-card").count() == 2
    assert "영하 162℃로 냉각" in group1.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review_queue.png"), full_page=True)

    # edit one card's fact and save: the edit approves it
    card = page.locator(f"#card-{edited.pk}")
    card.locator("textarea[name=fact]").fill("메탄 (CH₄)")
    card.get_by_role("button", name="Save edit & approve").click()
    page.wait_for_selector(".messagelist")
    assert f"Saved and approved card #{edited.pk}." in page.locator(".messagelist").inner_text()
    assert page.locator(f"#card-{edited.pk}").count() == 0

    # approve all cards of the second question
    page.locator(f"section[data-question-id='{q2.pk}']").get_by_role(
        "button", name="Approve all 2 cards of this question"
    ).click()
    page.wait_for_selector(".messagelist")
    assert "Approved 2 cards of question" in page.locator(".messagelist").inner_text()
    assert page.locator(f"section[data-question-id='{q2.pk}']").count() == 0

    # flag one of them back from the approved tab
    page.get_by_role("link", name="Approved").click()
    page.locator(f"#card-{odorant.pk}").get_by_role("button", name="Flag back to review").click()
    page.wait_for_selector(".messagelist")
    assert page.locator(f"#card-{odorant.pk}").count() == 0

    # delete one: it leaves the queue
    page.locator(".rq-tabs").get_by_role("link", name="Pending").click()
    assert page.locator(f"#card-{odorant.pk} .rq-flag").inner_text().startswith("Sent back by a reviewer")

    # typed into a card, then "Approve": the page asks before dropping the edit; dismissed, nothing is sent
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator(f"#card-{odorant.pk} textarea[name=fact]").fill("THT")
    page.locator(f"#card-{odorant.pk}").get_by_role("button", name="Approve", exact=True).click()
    assert asked and "is not saved" in asked[0]
    assert page.locator(f"#card-{odorant.pk} textarea[name=fact]").input_value() == "THT"  # still on the page
    page.reload()

    # on a phone the question keeps its width: the "approve all" button goes below it
    page.set_viewport_size({"width": 390, "height": 844})
    heading = page.locator(f"section[data-question-id='{q2.pk}'] h2").bounding_box()
    assert heading["width"] > 250, heading
    article = page.locator(f"#card-{odorant.pk}").bounding_box()
    field = page.locator(f"#card-{odorant.pk} textarea[name=fact]").bounding_box()
    assert field["x"] + field["width"] <= article["x"] + article["width"], (field, article)
    page.screenshot(path=str(ARTIFACTS / "review_queue_phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.once("dialog", lambda dialog: dialog.accept())  # "Delete card #…?"
    page.locator(f"#card-{cloze.pk}").get_by_role("button", name="Delete").click()
    page.wait_for_selector(".messagelist")
    assert page.locator(f"#card-{cloze.pk}").count() == 0
    assert page.locator("#rq-pending-count").inner_text() == "1"
    page.screenshot(path=str(ARTIFACTS / "review_queue_after.png"), full_page=True)

    states = {c.pk: c for c in MemoCard.objects.filter(pk__in=[edited.pk, cloze.pk, odorant.pk, doomed.pk])}
    assert states[edited.pk].fact == "메탄 (CH₄)" and states[edited.pk].needs_review is False
    assert states[doomed.pk].needs_review is False
    assert states[odorant.pk].needs_review is True and states[odorant.pk].flagged_by == "reviewer"
    assert states[cloze.pk].deleted_at is not None and states[cloze.pk].needs_review is True

    approved = published_or_pending(edited.pk)
    if approved is not None:
        assert approved.deleted is False and approved.payload["fact"] == "메탄 (CH₄)"
    assert published_or_pending(doomed.pk) is None or not Published.objects.get(
        kind="study_card", source_id=doomed.pk).deleted
    flagged = published_or_pending(odorant.pk)
    if flagged is not None:
        assert flagged.deleted is True and flagged.payload is None
    assert PublishOutbox.objects.filter(kind="study_card", source_id=cloze.pk).exists() or Published.objects.filter(
        kind="study_card", source_id=cloze.pk, deleted=True).exists() or not Published.objects.filter(
        kind="study_card", source_id=cloze.pk).exists()



def log_in(page, base: str) -> None:
    UserFactory(username="reviewer", is_staff=True, is_superuser=True)
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")


def many_groups(n: int = 4) -> list:
    """n questions with two pending cards each, tall enough that the last groups sit far below the top."""
    topic = StudyTopicFactory(user=UserFactory(username="gas-learner"), name="가스기사 필기")
    cards = []
    for i in range(n):
        question = QuestionFactory(study_topic=topic, question_text=f"다음 중 공기보다 가벼운 가스는? ({i})")
        for fmt in ("qa", "cloze"):
            cards.append(card_candidate_create(
                question=question, card_format=fmt, cue=f"공기보다 가벼운 가스 {i}", fact=f"암모니아 {fmt} {i}",
                cloze_text="____의 분자량은 17이며 공기(29)보다 가볍다." if fmt == "cloze" else "",
                evidence=[{"source_type": "document", "source_id": 1, "snippet": "암모니아의 분자량은 17이다.\n" * 4}],
            ))
    return cards


def test_delete_asks_first_and_cancel_keeps_the_card(live_server, page):
    cards = many_groups(1)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/memocard/review/")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator(f"#card-{cards[0].pk}").get_by_role("button", name="Delete").click()
    page.wait_for_timeout(300)
    assert asked and asked[0].startswith(f"Delete card #{cards[0].pk}?")
    assert page.locator(f"#card-{cards[0].pk}").count() == 1
    assert MemoCard.objects.get(pk=cards[0].pk).deleted_at is None  # cancelled: nothing sent
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#card-{cards[0].pk}").get_by_role("button", name="Delete").click()
    page.wait_for_selector(".messagelist")
    assert MemoCard.objects.get(pk=cards[0].pk).deleted_at is not None


def queue_with_an_edit(live_server, page) -> list:
    """The review queue of one question's two cards, with a fact typed into the first and not saved."""
    cards = many_groups(1)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/memocard/review/")
    page.locator(f"#card-{cards[0].pk} textarea[name=fact]").fill("암모니아 (NH₃)")
    return cards


def test_approve_all_asks_before_an_edit_typed_into_one_of_the_cards_is_lost(live_server, page):
    """Only the clicked card's own form was checked: "Approve all" approved the card being corrected as it was
    stored, and the correction was gone without a word."""
    cards = queue_with_an_edit(live_server, page)
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Approve all 2 cards of this question").click()
    page.wait_for_timeout(300)
    assert asked == [f"Your edit of card #{cards[0].pk} is not saved and will be lost. Go on without it?"]
    assert MemoCard.objects.filter(pk__in=[c.pk for c in cards], needs_review=True).count() == 2  # nothing sent
    assert page.locator(f"#card-{cards[0].pk} textarea[name=fact]").input_value() == "암모니아 (NH₃)"

    page.once("dialog", lambda dialog: dialog.accept())  # going on without it, as asked
    page.get_by_role("button", name="Approve all 2 cards of this question").click()
    page.wait_for_selector(".messagelist")
    assert MemoCard.objects.filter(pk__in=[c.pk for c in cards], needs_review=False).count() == 2


def test_following_a_link_asks_before_an_edit_typed_into_a_card_is_lost(live_server, page):
    queue_with_an_edit(live_server, page)
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.type), dialog.accept()))
    page.locator(".rq-tabs").get_by_role("link", name="Approved").click()
    page.wait_for_url("**status=approved**")
    assert asked == ["beforeunload"]


def test_the_message_of_an_action_far_down_the_queue_is_in_sight(live_server, page):
    cards = many_groups(4)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/memocard/review/")
    page.locator(f"#card-{cards[6].pk}").get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_selector(".messagelist")
    assert page.evaluate("window.scrollY") > 500  # back at the reviewer's group (#group-4), far down
    box = page.locator(".messagelist").bounding_box()
    assert box is not None and 0 <= box["y"] < 100, box  # "Approved card #…" at the top of the window
    group = page.locator("#group-4 .rq-group-head").bounding_box()
    assert group["y"] >= box["y"] + box["height"] - 1  # and the group's head below it, not under it
    page.screenshot(path=str(ARTIFACTS / "review_queue_message.png"))


def test_changelist_keeps_korean_cues_and_facts_readable(live_server, page):
    many_groups(3)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/memocard/")
    cue = page.locator("#result_list td.field-short_cue").first.bounding_box()
    fact = page.locator("#result_list td.field-short_fact").first.bounding_box()
    # squeezed next to the other columns they were one or two syllables wide, a cue ten lines high
    assert cue["width"] >= 150 and fact["width"] >= 150, (cue, fact)
    assert cue["height"] < 80, cue
    page.screenshot(path=str(ARTIFACTS / "memocard_changelist.png"))


def test_admin_index_recent_actions_sit_beside_the_card_review_summary(live_server, page):
    many_groups(1)
    log_in(page, live_server.url)
    summary = page.locator("#card-review-summary").bounding_box()
    recent = page.locator("#recent-actions-module").bounding_box()
    assert abs(recent["y"] - summary["y"]) < 5, (summary, recent)  # not pushed down below the summaries
    assert recent["x"] > summary["x"] + summary["width"]


def test_the_card_list_fits_a_1280_window_and_breaks_korean_between_words(live_server, page):
    cards = many_groups(3)
    # the longest review column
    MemoCard.objects.filter(pk=cards[0].pk).update(flagged_by="user", flagged_at=timezone.now())
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/admin/study/memocard/")
    # Every column in sight: no sideways scrolling of the table (the topic column used to be cut off).
    widths = page.evaluate("(() => { const r = document.querySelector('.results');"
                           " return [r.scrollWidth, r.clientWidth]; })()")
    assert widths[0] <= widths[1], widths
    assert page.locator("#nav-sidebar").count() == 0
    # A Korean cue wraps between words only: each line of the cell ends at a space or the end of the text.
    lines = page.evaluate("""(() => {
        const cell = [...document.querySelectorAll('#result_list td.field-short_cue')]
            .find(c => c.textContent.includes('공기보다 가벼운 가스 0'));
        const text = cell.querySelector('a');  // a box 5.5em wide inside the cell, which it takes its style from
        text.style.display = 'inline-block'; text.style.width = '5.5em';
        const node = text.firstChild, range = document.createRange(), out = [];
        let top = null, line = '';
        for (let i = 0; i < node.length; i++) {
            range.setStart(node, i); range.setEnd(node, i + 1);
            const y = Math.round(range.getClientRects()[0]?.top ?? top);
            if (top !== null && y > top) { out.push(line); line = ''; }
            top = y; line += node.data[i];
        }
        out.push(line);
        return out;
    })()""")
    assert len(lines) > 1 and "".join(lines) == "공기보다 가벼운 가스 0", lines
    assert all(line.endswith(" ") for line in lines[:-1]), lines


def test_a_tablet_sees_the_cards_to_review_button_below_the_title(live_server, page):
    many_groups(1)
    log_in(page, live_server.url)
    page.set_viewport_size({"width": 900, "height": 1000})
    page.goto(f"{live_server.url}/admin/study/memocard/")
    title = page.locator("#content h1").bounding_box()
    button = page.get_by_role("link", name="Cards to review (2)").bounding_box()
    assert title and button
    assert button["y"] >= title["y"] + title["height"], (title, button)  # its own line, not over the title
