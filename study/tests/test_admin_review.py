"""The admin review queue without a browser: access, grouping, each POST action, bulk actions, the change form."""

import html
import re
import unicodedata
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from publishing.models import PublishOutbox
from study.admin.cards import CARDS_PER_PAGE
from study.models import MemoCard
from study.selectors import cards as card_selectors
from study.services import cards as card_services
from study.services.cards import card_candidate_create, card_create
from study.tests.factories import CardEvidenceFactory, MemoCardFactory, QuestionFactory, StudyTopicFactory, UserFactory
from study.textnorm import card_dedup_hash
from studyserver.testing import failing, run_concurrently, while_holding

pytestmark = pytest.mark.django_db

QUEUE = "admin:study_memocard_review"
ACTION = "admin:study_memocard_review_action"


@pytest.fixture
def reviewer(client):
    staff = UserFactory(username="reviewer", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


@pytest.fixture
def pending(user):
    """Two pending cards of one question (with evidence) and one of another question."""
    topic = StudyTopicFactory(user=user)
    q1 = QuestionFactory(study_topic=topic, question_text="LNG의 주성분은?", choices=["메탄", "에탄"], correct_choice=1)
    q2 = QuestionFactory(study_topic=topic, question_text="도시가스 부취제는?")
    evidence = [{"source_type": "explanation", "source_id": 1, "snippet": "LNG는 메탄이 주성분"}]
    a = card_candidate_create(question=q1, card_format="qa", cue="LNG 주성분?", fact="메탄", evidence=evidence)
    b = card_candidate_create(question=q1, card_format="cloze", cue="LNG", fact="영하 162도",
                              cloze_text="LNG는 ____에서 액화한다")
    c = card_candidate_create(question=q2, card_format="qa", cue="부취제?", fact="THT")
    return {"q1": q1, "q2": q2, "a": a, "b": b, "c": c}


def outbox() -> list[int]:
    return list(PublishOutbox.objects.filter(kind="study_card").order_by("id").values_list("source_id", flat=True))


def post_action(client, **data):
    return client.post(reverse(ACTION), {"next": reverse(QUEUE), **data}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def messages_shown(response) -> list[str]:
    """The messages as the page shows them. With requests in two threads, `response.context` can hold the other
    thread's page: the test client records contexts through a process-wide signal (template_rendered)."""
    listing = re.search(r'<ul class="messagelist">(.*?)</ul>', response.content.decode(), re.S)
    items = re.findall(r"<li[^>]*>(.*?)</li>", listing.group(1), re.S) if listing else []
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items]


def test_non_staff_is_redirected_to_login(client, user):
    client.force_login(user)
    response = client.get(reverse(QUEUE))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    response = client.post(reverse(ACTION), {"action": "approve_question", "question_id": 1})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_anonymous_is_redirected(client):
    assert client.get(reverse(QUEUE)).status_code == 302


def test_queue_shows_groups_with_question_evidence_and_owner(reviewer, pending, user, django_assert_max_num_queries):
    other = UserFactory(username="second-learner")
    card_create(user=other, card_format="qa", cue="x", fact="y", material="법규")
    MemoCardFactory(user=other, needs_review=True, flagged_by="user", extra={"material": "법규"})
    with django_assert_max_num_queries(12):
        response = reviewer.get(reverse(QUEUE))
    assert response.status_code == 200
    html = response.content.decode()
    groups = response.context["groups"]
    # the group holding a flagged card first, then first appearance
    assert [g.question_text for g in groups] == ["[자료] 법규", "LNG의 주성분은?", "도시가스 부취제는?"]
    assert [[c.pk for c in g.cards] for g in groups][1:] == [[pending["a"].pk, pending["b"].pk], [pending["c"].pk]]
    assert html.count("LNG의 주성분은?") == 1  # the question is shown once per group
    assert "정답 <b>1. 메탄</b>" in html
    assert "LNG는 메탄이 주성분" in html
    assert "LNG는 ____에서 액화한다" in html
    assert "Sent back by the learner" in html
    assert user.username in html and "second-learner" in html
    assert response.context["pending_count"] == 4


def pending_cards(n: int, **fields) -> list[MemoCard]:
    """n pending cards of one group (a question's, or one owner's manual cards of one material), oldest first."""
    return MemoCardFactory.create_batch(n, needs_review=True, **fields)


def question_cards(n: int, question, **fields) -> list[MemoCard]:
    return pending_cards(n, source_question=question, source_kind="question", **fields)


def manual_cards(n: int, user, material: str, **fields) -> list[MemoCard]:
    return pending_cards(n, user=user, extra={"material": material}, **fields)


def card_ids(response) -> list[int]:
    return card_ids_of(response.content.decode())


def card_ids_of(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-card-id="(\d+)"', page)]


@pytest.mark.parametrize(("n_groups", "group_size"), [(5, 2), (60, 2), (1, 120)])  # the last: a split group
def test_queue_query_count_does_not_grow_with_groups_or_cards(reviewer, user, django_assert_max_num_queries,
                                                              n_groups, group_size):
    topic = StudyTopicFactory(user=user)
    for _ in range(n_groups):
        for card in question_cards(group_size, QuestionFactory(study_topic=topic)):
            CardEvidenceFactory(card=card)
    for params in ({}, {"page": 2}, {"status": "approved", "user": user.pk}):
        with django_assert_max_num_queries(10):
            response = reviewer.get(reverse(QUEUE), params)
        assert response.status_code == 200
    shown = reviewer.get(reverse(QUEUE))
    assert 0 < sum(len(g.cards) for g in shown.context["groups"]) <= CARDS_PER_PAGE
    assert shown.context["card_total"] == n_groups * group_size


def test_queue_filters_by_user_and_format(reviewer, pending):
    other = UserFactory()
    MemoCardFactory(user=other, needs_review=True)
    response = reviewer.get(reverse(QUEUE), {"user": other.pk})
    assert [c.user_id for g in response.context["groups"] for c in g.cards] == [other.pk]
    response = reviewer.get(reverse(QUEUE), {"format": "cloze"})
    assert [c.pk for g in response.context["groups"] for c in g.cards] == [pending["b"].pk]
    # junk filters are ignored, never a 500, and each alone: the valid ones still apply
    assert reviewer.get(reverse(QUEUE), {"user": "x", "format": "essay", "page": "zz"}).status_code == 200
    response = reviewer.get(reverse(QUEUE), {"user": "x", "format": "cloze", "q": "y" * 500})
    assert [c.pk for g in response.context["groups"] for c in g.cards] == [pending["b"].pk]
    response = reviewer.get(reverse(QUEUE), {"status": "approved", "format": "essay"})
    assert response.context["status"] == "approved"


def test_queue_filters_by_source_kind(reviewer, pending, user):
    manual = card_create(user=user, card_format="qa", cue="직접", fact="직접 쓴 카드", material="법규")
    card_services.card_flag(card=manual)  # back in review: a manual card pending like the question cards

    def shown(**params) -> list[int]:
        return sorted(c.pk for g in reviewer.get(reverse(QUEUE), params).context["groups"] for c in g.cards)

    assert shown(source_kind="manual") == [manual.pk]
    assert shown(source_kind="question") == sorted([pending["a"].pk, pending["b"].pk, pending["c"].pk])


@pytest.mark.parametrize("status", ["bogus", "APPROVED", ""])
def test_an_unknown_status_shows_the_pending_tab(reviewer, pending, status):
    card_services.card_approve(card=pending["c"])
    response = reviewer.get(reverse(QUEUE), {"status": status})
    assert response.context["status"] == "pending"
    assert sorted(c.pk for g in response.context["groups"] for c in g.cards) == [pending["a"].pk, pending["b"].pk]


def test_the_pending_tab_counts_the_cards_its_filters_keep(reviewer, pending, user):
    MemoCardFactory(user=UserFactory(), needs_review=True)  # another user's: not in a filter by `user`
    MemoCardFactory(user=user, needs_review=False)

    def tab_count(**params) -> str:
        page = reviewer.get(reverse(QUEUE), params).content.decode()
        return page.split('id="rq-pending-count">', 1)[1].split("<", 1)[0]

    assert tab_count() == "4"
    assert tab_count(user=user.pk) == "3"
    assert tab_count(format="cloze") == "1"
    assert tab_count(status="approved", format="qa", user=user.pk) == "2"  # a and c wait, with these filters
    assert tab_count(status="approved", q="부취제") == "1"


def test_queue_finds_cards_by_text_in_the_card_or_its_question(reviewer, pending, user):
    def found(**params) -> list[int]:
        response = reviewer.get(reverse(QUEUE), params)
        assert response.status_code == 200
        return sorted(c.pk for g in response.context["groups"] for c in g.cards)

    a, b, c = pending["a"].pk, pending["b"].pk, pending["c"].pk
    assert found(q="부취제") == [c]  # the cue
    assert found(q="tht") == [c]  # the fact, any case
    assert found(q="액화") == [b]  # the cloze text
    assert found(q="주성분은") == [a, b]  # the source question's text
    assert found(q="  메탄 ") == [a]  # stripped
    assert found(q=unicodedata.normalize("NFD", "부취제")) == [c]  # typed decomposed, stored composed
    MemoCard.objects.filter(pk=b).update(cloze_text=unicodedata.normalize("NFD", "액화 천연가스"))  # as an app sent it
    assert found(q=unicodedata.normalize("NFD", "액화")) == [b]  # stored decomposed, found as it is stored
    assert found(q="액화") == [b]  # stored decomposed, typed composed: found in its NFD spelling
    assert found(q="부취제", format="cloze") == []  # with the other filters
    assert found(q="없는 말") == []
    page = reviewer.get(reverse(QUEUE), {"q": "부취제", "format": "qa"}).content.decode()
    assert 'name="q" value="부취제"' in page
    assert f'href="?status=approved&amp;{urlencode({"q": "부취제"})}&amp;format=qa"' in page  # tabs keep it
    assert reviewer.get(reverse(QUEUE), {"q": "x" * 500}).status_code == 200  # too long: ignored, no 500


def test_a_page_holds_whole_groups_up_to_its_card_budget(reviewer, user):
    topic = StudyTopicFactory(user=user)
    for _ in range(23):
        question_cards(3, QuestionFactory(study_topic=topic))
    first = reviewer.get(reverse(QUEUE))
    assert [len(g.cards) for g in first.context["groups"]] == [3] * (CARDS_PER_PAGE // 3)  # no group cut
    assert "69 cards in 23 groups" in first.content.decode()
    second = reviewer.get(reverse(QUEUE), {"page": 2})
    assert len(second.context["groups"]) == 23 - CARDS_PER_PAGE // 3
    assert "Page 2 of 2" in second.content.decode()


def test_a_group_bigger_than_a_page_is_split_across_pages(reviewer, user):
    cards = manual_cards(120, user, "법규")
    ids = [card.pk for card in cards]
    pages = [reviewer.get(reverse(QUEUE), {"page": number}) for number in (1, 2, 3)]
    first = pages[0].content.decode()
    assert card_ids(pages[0]) == ids[:CARDS_PER_PAGE]
    assert "cards 1–50 of 120" in first  # the header says the page shows part of the group
    assert "120 cards in 1 group" in first and "page 1 of 3" in first
    assert "cards 51–100 of 120" in pages[1].content.decode()
    assert card_ids(pages[2]) == ids[100:]  # the rest
    assert "cards 101–120 of 120" in pages[2].content.decode()
    assert [g.question_text for page in pages for g in page.context["groups"]] == ["[자료] 법규"] * 3


def test_groups_keep_their_order_across_pages_flagged_first(reviewer, user):
    topic = StudyTopicFactory(user=user)
    a = question_cards(45, QuestionFactory(study_topic=topic))
    b = manual_cards(20, user, "가스 물성")
    big_question = QuestionFactory(study_topic=topic)
    big = question_cards(60, big_question)
    e = question_cards(20, QuestionFactory(study_topic=topic))
    flagged = manual_cards(1, UserFactory(), "법규", flagged_by="user")  # created last, disputed: first
    pages = [reviewer.get(reverse(QUEUE), {"page": number}) for number in (1, 2, 3, 4)]
    shown = [[[c.pk for c in g.cards] for g in page.context["groups"]] for page in pages]
    assert shown == [
        [[flagged[0].pk], [c.pk for c in a]],  # 46 cards: the next group does not fit
        [[c.pk for c in b]],  # 20 + 50 would not fit either
        [[c.pk for c in big[:50]]],  # the big group's first part, a page of its own
        [[c.pk for c in big[50:]], [c.pk for c in e]],  # its last part, then what follows
    ]
    third, fourth = pages[2].content.decode(), pages[3].content.decode()
    assert "cards 1–50 of 60" in third and "cards 51–60 of 60" in fourth
    # the button approves the whole question and says how many; it asks first when some are not on the page
    assert "Approve all 60 cards of this question" in third
    assert (f'data-confirm="Approve all 60 cards of question #{big_question.pk}? 50 of them are on this page; the '
            'others are on other pages."') in third
    assert "Approve all 45 cards of this question</button>" in pages[0].content.decode()  # all shown: no question
    assert "data-confirm=\"Approve all" not in pages[0].content.decode()
    filtered = reviewer.get(reverse(QUEUE), {"page": 2, "source_kind": "question"}).content.decode()
    assert "cards 1–50 of 60" in filtered and "Approve all 60 cards of this question" in filtered
    response = post_action(reviewer, action="approve_question", question_id=big_question.pk)
    assert f"Approved 60 cards of question #{big_question.pk}." in messages_of(response)


def test_an_action_on_page_2_comes_back_to_the_same_page_and_group_part(reviewer, user):
    cards = manual_cards(120, user, "법규")
    page = reviewer.get(reverse(QUEUE), {"page": 2}).content.decode()
    back = f"{reverse(QUEUE)}?page=2#group-1"
    assert f'name="next" value="{back}"' in page
    response = reviewer.post(reverse(ACTION), {"next": back, "action": "approve", "card_id": cards[59].pk})
    assert response.status_code == 302 and response["Location"] == back
    again = reviewer.get(response["Location"])
    assert f"Approved card #{cards[59].pk}." in messages_of(again)
    # the same part of the group, one card shorter: the reviewer goes on with the card after the approved one
    assert card_ids(again) == [c.pk for c in cards[50:59] + cards[60:101]]
    assert "cards 51–100 of 119" in again.content.decode()


def test_groups_are_counted_in_sql_per_owner_and_material(user):
    other = UserFactory()
    topic = StudyTopicFactory(user=user)
    question = QuestionFactory(study_topic=topic)
    law = manual_cards(2, user, "법규")
    plain = pending_cards(1, user=user)  # no material
    of_question = question_cards(2, question, flagged_by="reviewer")
    others_law = manual_cards(1, other, "법규", flagged_by="user")
    MemoCardFactory(user=user, needs_review=True, extra={"material": "법규"}, deleted_at=timezone.now())
    MemoCardFactory(user=user, needs_review=False, extra={"material": "법규"})
    groups = card_selectors.review_queue_group_keys(card_selectors.review_queue_filtered(needs_review=True))
    assert [(g.source_question_id, g.user_id, g.material, g.card_count, g.first_card_id, g.flagged)
            for g in groups] == [
        (question.pk, None, "", 2, of_question[0].pk, True),
        (None, other.pk, "법규", 1, others_law[0].pk, True),
        (None, user.pk, "법규", 2, law[0].pk, False),
        (None, user.pk, "", 1, plain[0].pk, False),
    ]


def test_owner_choices_list_exactly_the_users_with_live_cards(reviewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    zed, amy = UserFactory(username="zed"), UserFactory(username="amy")
    MemoCardFactory.create_batch(2, user=zed, needs_review=True)
    MemoCardFactory(user=amy, needs_review=False)
    gone = UserFactory(username="gone")  # every card soft-deleted
    MemoCardFactory.create_batch(2, user=gone, deleted_at=timezone.now())
    UserFactory(username="cardless")
    with CaptureQueriesContext(connection) as queries:
        choices = card_selectors.card_owner_choices()
    assert choices == [(amy.pk, "amy"), (zed.pk, "zed")]  # once each, by username
    (sql,) = [query["sql"].upper() for query in queries]
    assert "EXISTS" in sql and "DISTINCT" not in sql  # no join of every user to every card
    assert reviewer.get(reverse(QUEUE)).context["users"] == choices


def test_approve_one(reviewer, pending):
    response = post_action(reviewer, action="approve", card_id=pending["a"].pk)
    assert response.status_code == 200
    pending["a"].refresh_from_db()
    assert pending["a"].needs_review is False and pending["a"].reviewed_at is not None
    assert outbox() == [pending["a"].pk]
    assert f"Approved card #{pending['a'].pk}." in messages_of(response)


def test_approve_all_under_a_filter_counts_and_asks_about_the_cards_it_hides(reviewer, pending):
    """A text search showed one card of a question; the button said no number, and one click approved the cards
    the filter hid too."""
    page = reviewer.get(reverse(QUEUE), {"q": pending["b"].fact}).content.decode()
    assert card_ids_of(page) == [pending["b"].pk]
    question = pending["q1"].pk
    assert (f'data-confirm="Approve all 2 cards of question #{question}? 1 of them is on this page; the others are '
            'on other pages or hidden by the filters."') in page
    assert "Approve all 2 cards of this question</button>" in page


def test_approve_all_approves_no_card_the_page_did_not_count(reviewer, pending):
    """The button's count was read when the page was drawn: a card made (or flagged back) before the click was
    approved unseen, and the message counted it as if the reviewer had been told."""
    question = pending["q1"]
    page = reviewer.get(reverse(QUEUE)).content.decode()
    form = re.search(rf'<form[^>]*>(?:(?!</form>).)*name="question_id" value="{question.pk}"(?:(?!</form>).)*</form>',
                     page, re.S).group(0)
    posted = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert posted["expected"] == f"{pending['a'].pk},{pending['b'].pk}"
    late = card_candidate_create(question=question, card_format="qa", cue="LNG 액화 온도?", fact="영하 162도 부근")

    def refused(response, waiting: int) -> bool:
        return messages_of(response) == [
            f"The cards of question #{question.pk} waiting for review are not the 2 the page showed ({waiting} wait "
            "now: cards were made, flagged back or approved meanwhile); nothing was approved. Look at them again."]

    response = post_action(reviewer, action="approve_question", question_id=question.pk, expected=posted["expected"])
    assert refused(response, 3)
    assert MemoCard.objects.filter(source_question=question, needs_review=True).count() == 3
    assert outbox() == []

    # one shown card approved in another tab as the new one came: as many wait as the page said, not the same ones
    card_services.card_approve(card=pending["a"])
    response = post_action(reviewer, action="approve_question", question_id=question.pk, expected=posted["expected"])
    assert refused(response, 2)
    late.refresh_from_db()
    assert late.needs_review

    assert f'name="expected" value="{pending["b"].pk},{late.pk}"' in reviewer.get(reverse(QUEUE)).content.decode()
    card_services.card_approve(card=late)  # approved too: what waits was all shown (less one approved meanwhile)
    response = post_action(reviewer, action="approve_question", question_id=question.pk, expected=posted["expected"])
    assert messages_of(response) == [f"Approved 1 card of question #{question.pk}."]
    assert not MemoCard.objects.filter(source_question=question, needs_review=True).exists()


def test_approve_all_names_and_counts_only_the_live_cards_of_the_question(reviewer, pending):
    """A deleted card keeps its needs_review: counted with the live ones, the button said "Approve all 2 cards" for
    one card on the page, and the form named the deleted card among those the click was to approve."""
    question = pending["q1"]
    card_services.card_delete(card=pending["a"])
    page = reviewer.get(reverse(QUEUE)).content.decode()
    form = re.search(rf'<form[^>]*>(?:(?!</form>).)*name="question_id" value="{question.pk}"(?:(?!</form>).)*</form>',
                     page, re.S).group(0)
    posted = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert posted["expected"] == str(pending["b"].pk)
    assert "Approve the card of this question</button>" in form and "data-confirm" not in form


def test_approve_all_cards_of_a_question(reviewer, pending):
    response = post_action(reviewer, action="approve_question", question_id=pending["q1"].pk)
    assert response.status_code == 200
    assert set(MemoCard.objects.filter(needs_review=False).values_list("id", flat=True)) == {
        pending["a"].pk, pending["b"].pk,
    }
    assert sorted(outbox()) == sorted([pending["a"].pk, pending["b"].pk])
    assert f"Approved 2 cards of question #{pending['q1'].pk}." in messages_of(response)


def test_edit_approves_and_recomputes_hash(reviewer, pending):
    card = pending["a"]
    response = post_action(reviewer, action="edit", card_id=card.pk, cue="LNG의 주성분?", fact="메탄 (CH₄)",
                           cloze_text="")
    assert response.status_code == 200
    card.refresh_from_db()
    assert (card.cue, card.fact, card.needs_review) == ("LNG의 주성분?", "메탄 (CH₄)", False)
    assert card.dedup_hash == card_dedup_hash(source_question_id=pending["q1"].pk, card_format="qa",
                                              fact="메탄 (CH₄)")
    assert outbox() == [card.pk]


def test_duplicate_edit_shows_a_message_and_changes_nothing(reviewer, pending):
    other = card_candidate_create(question=pending["q1"], card_format="qa", cue="other", fact="에탄")
    response = post_action(reviewer, action="edit", card_id=pending["a"].pk, cue="c", fact="에탄.", cloze_text="")
    assert response.status_code == 200
    link = reverse("admin:study_memocard_change", args=[other.pk])
    assert messages_of(response) == [f'Card #{pending["a"].pk}: The same fact is on card <a href="{link}">#{other.pk}'
                                     "</a> (waiting for review) of this user; nothing was changed."]
    assert f'<a href="{link}">#{other.pk}</a>' in response.content.decode()  # a link, not escaped text
    pending["a"].refresh_from_db()
    assert pending["a"].fact == "메탄" and pending["a"].needs_review
    assert outbox() == []


def test_empty_fact_is_refused_with_a_message(reviewer, pending):
    response = post_action(reviewer, action="edit", card_id=pending["a"].pk, cue="c", fact="", cloze_text="")
    assert messages_of(response) == [f'Card #{pending["a"].pk} was not saved: fact: This field is required.']
    pending["a"].refresh_from_db()
    assert pending["a"].fact == "메탄"


def test_flag_back_and_delete(reviewer, pending):
    card = pending["a"]
    post_action(reviewer, action="approve", card_id=card.pk)
    approved_view = reviewer.get(reverse(QUEUE), {"status": "approved"})
    assert [c.pk for g in approved_view.context["groups"] for c in g.cards] == [card.pk]
    post_action(reviewer, action="flag", card_id=card.pk)
    card.refresh_from_db()
    assert card.needs_review and card.flagged_by == "reviewer" and card.flagged_at is not None
    post_action(reviewer, action="delete", card_id=card.pk)
    card.refresh_from_db()
    assert card.deleted_at is not None
    assert outbox() == [card.pk, card.pk, card.pk]
    response = post_action(reviewer, action="approve", card_id=card.pk)
    assert "That card no longer exists." in messages_of(response)


@pytest.mark.parametrize("data", [{"action": "nuke"}, {"action": "approve", "card_id": "x"},
                                  {"action": "approve_question", "question_id": "99999999999999999999"},
                                  {"action": "approve", "card_id": "99999999999999999999"}])
def test_bad_posts_never_500(reviewer, pending, data):
    response = post_action(reviewer, **data)
    assert response.status_code == 200
    assert MemoCard.objects.filter(needs_review=True).count() == 3


def test_a_get_on_the_action_url_leads_back_to_the_queue_saying_the_action_was_not_done(reviewer, pending):
    """Where the login page sends a reviewer whose sign-in ended as they clicked: a blank 405 page, the action and
    the typed edit lost without a word."""
    response = reviewer.get(reverse(ACTION), follow=True)
    assert response.redirect_chain == [(reverse(QUEUE), 302)]
    assert messages_of(response) == ["The last action was not done (your sign-in had ended): do it again."]
    assert reviewer.put(reverse(ACTION)).status_code == 405
    assert MemoCard.objects.filter(needs_review=True).count() == 3


def test_a_reviewer_who_may_only_view_cards_gets_fields_they_cannot_type_into(client, pending):
    staff_with(client, "view_memocard")
    page = client.get(reverse(QUEUE)).content.decode()
    fields = re.findall(r"<textarea [^>]*>", page)
    assert fields and all(" readonly" in field for field in fields)


@pytest.mark.parametrize("next_url", ["https://evil.example/", "/admin/%00", "/admin/study/memocard/",
                                      "/admin/study/memocard/review/action/"])
def test_a_next_url_that_is_not_a_queue_page_is_ignored(reviewer, pending, next_url):
    """Another site, or a page of this one that shows no messages (they piled up for the next queue page)."""
    response = reviewer.post(reverse(ACTION), {"action": "approve", "card_id": pending["a"].pk, "next": next_url})
    assert response["Location"] == reverse(QUEUE)


def test_a_queue_page_as_next_url_is_where_the_action_returns(reviewer, pending):
    page = reverse(QUEUE) + "?tab=pending&q=LNG#group-2"
    response = reviewer.post(reverse(ACTION), {"action": "approve", "card_id": pending["a"].pk, "next": page})
    assert response["Location"] == page


def test_admin_index_and_changelist_show_the_pending_count(reviewer, pending):
    index = reviewer.get(reverse("admin:index")).content.decode()
    assert '<strong class="card-review-count">3</strong>' in index
    assert reverse(QUEUE) in index
    changelist = reviewer.get(reverse("admin:study_memocard_changelist")).content.decode()
    assert "Cards to review (3)" in changelist


def test_changelist_bulk_actions_use_the_services(reviewer, pending):
    url = reverse("admin:study_memocard_changelist")
    ids = [pending["a"].pk, pending["c"].pk]
    response = reviewer.post(url, {"action": "approve_selected", "_selected_action": ids}, follow=True)
    assert response.status_code == 200
    assert set(MemoCard.objects.filter(needs_review=False).values_list("id", flat=True)) == set(ids)
    reviewer.post(url, {"action": "flag_selected", "_selected_action": [pending["a"].pk]})
    pending["a"].refresh_from_db()
    assert pending["a"].needs_review and pending["a"].flagged_by == "reviewer"
    reviewer.post(url, {"action": "soft_delete_selected", "post": "yes", "_selected_action": [pending["b"].pk]})
    pending["b"].refresh_from_db()
    assert pending["b"].deleted_at is not None
    assert sorted(outbox()) == sorted([*ids, pending["a"].pk, pending["b"].pk])


def test_there_is_no_hard_delete_or_approve_everything_action(reviewer, pending):
    response = reviewer.get(reverse("admin:study_memocard_changelist"))
    actions = [name for name, _ in response.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in actions
    assert sorted(a for a in actions if a) == ["approve_selected", "flag_selected", "soft_delete_selected"]


def test_a_soft_deleted_card_is_gone_from_the_changelist_and_its_change_page(reviewer, pending):
    card_services.card_delete(card=pending["c"])
    listed = reviewer.get(reverse("admin:study_memocard_changelist")).context["cl"].result_list
    assert sorted(card.pk for card in listed) == sorted([pending["a"].pk, pending["b"].pk])
    response = reviewer.get(reverse("admin:study_memocard_change", args=[pending["c"].pk]))
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")  # "does not exist"


def test_changelist_filters_and_search(reviewer, pending):
    url = reverse("admin:study_memocard_changelist")
    assert reviewer.get(url, {"needs_review__exact": "1", "format__exact": "cloze"}).context["cl"].result_count == 1
    assert reviewer.get(url, {"q": "THT"}).context["cl"].result_count == 1
    assert reviewer.get(url, {"source_kind__exact": "manual"}).context["cl"].result_count == 0


@pytest.mark.postgresql  # two requests waiting on each other's row locks
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_approving_one_question_at_once_log_each_card_once(pending):
    clients = []
    for name in ("reviewer-a", "reviewer-b"):
        client = Client()
        client.force_login(UserFactory(username=name, is_staff=True, is_superuser=True))
        clients.append(client)

    def approve(client) -> list[str]:
        return messages_shown(post_action(client, action="approve_question", question_id=pending["q1"].pk))

    said = [m for ms in run_concurrently(*(lambda c=c: approve(c) for c in clients)) for m in ms]

    counts = [int(m.split()[1]) for m in said if m.startswith("Approved ")]
    assert sum(counts) == 2 and max(counts) == 2, said  # one request approved both, the other none
    logged = LogEntry.objects.filter(object_id__in=[str(pending["a"].pk), str(pending["b"].pk)])
    assert sorted(int(e.object_id) for e in logged) == sorted([pending["a"].pk, pending["b"].pk])  # once each
    assert len({e.user_id for e in logged}) == 1  # by the reviewer whose request approved them


def test_change_form_edit_goes_through_card_update(reviewer, pending):
    card = pending["b"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    data = {"cue": card.cue, "fact": "영하 161.5도", "cloze_text": card.cloze_text, "needs_review": "on",
            "evidence-TOTAL_FORMS": "0", "evidence-INITIAL_FORMS": "0", "evidence-MIN_NUM_FORMS": "0",
            "evidence-MAX_NUM_FORMS": "1000"}
    response = reviewer.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    card.refresh_from_db()
    assert card.fact == "영하 161.5도" and card.needs_review is False  # an edit approves
    assert card.dedup_hash == card_dedup_hash(source_question_id=pending["q1"].pk, card_format="cloze",
                                              fact="영하 161.5도")
    assert outbox() == [card.pk]


def test_a_card_opened_from_the_queue_goes_back_to_that_queue_page_when_saved(reviewer, pending):
    """The #id link led to the change page, whose save landed on the card list: the reviewer's tab, filters and
    page were gone. Another site or page as `next` is not followed."""
    from urllib.parse import quote

    queue_page = f"{reverse(QUEUE)}?status=pending&format=cloze&page=1"
    card = pending["b"]
    page = reviewer.get(queue_page).content.decode()
    link = f'{reverse("admin:study_memocard_change", args=[card.pk])}?next={quote(queue_page, safe="/")}'
    assert f'href="{html.escape(link)}"' in page
    shown = as_shown(reviewer, link)
    response = reviewer.post(link, {**shown, "fact": "영하 161.5도"})
    assert (response.status_code, response["Location"]) == (302, queue_page)
    for elsewhere in ("https://evil.example/admin/study/memocard/review/", reverse("admin:study_memocard_changelist")):
        url = f'{reverse("admin:study_memocard_change", args=[card.pk])}?next={quote(elsewhere, safe="/")}'
        response = reviewer.post(url, {**as_shown(reviewer, url), "fact": f"영하 {len(elsewhere)}도"})
        assert (response.status_code, response["Location"]) == (302, reverse("admin:study_memocard_changelist"))


def as_shown(client, url: str) -> dict:
    """The change form's fields as its page holds them, with the hidden copies of what they showed (`initial-…`),
    and no evidence rows changed: what a browser posts when nothing is touched."""
    page = client.get(url)
    form = page.context["adminform"].form
    for name in ("cue", "fact", "cloze_text", "needs_review"):  # what the browser sends back, rendered in the page
        assert f'name="initial-{name}"' in page.content.decode(), name
    data = {"evidence-TOTAL_FORMS": "0", "evidence-INITIAL_FORMS": "0", "evidence-MIN_NUM_FORMS": "0",
            "evidence-MAX_NUM_FORMS": "1000"}
    for name in ("cue", "fact", "cloze_text", "needs_review"):
        value = form[name].value()
        if name == "needs_review":
            value = "on" if value else ""
        data[name] = data[f"initial-{name}"] = value
    return data


def test_change_form_saves_only_the_fields_it_changed(reviewer, pending):
    """The page was opened, then another reviewer changed the cue in the queue: saving a new fact here wrote the
    page's old cue back over theirs."""
    card = pending["b"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    shown = as_shown(reviewer, url)
    card_services.card_update(card=MemoCard.objects.get(pk=card.pk), cue="다른 검토자의 질문")  # (approves it)
    response = reviewer.post(url, {**shown, "fact": "영하 161.5도"}, follow=True)
    assert response.status_code == 200
    card.refresh_from_db()
    assert (card.cue, card.fact, card.needs_review) == ("다른 검토자의 질문", "영하 161.5도", False)

    # the same field changed here and meanwhile: a form error, the other's text kept, this one's typed text shown
    card_services.card_update(card=MemoCard.objects.get(pk=card.pk), fact="섭씨 영하 162도")
    response = reviewer.post(url, {**shown, "fact": "영하 160도"})
    assert response.status_code == 200
    assert "Changed meanwhile" in str(response.context["adminform"].form.errors["fact"])
    assert response.context["adminform"].form["fact"].value() == "영하 160도"
    card.refresh_from_db()
    assert card.fact == "섭씨 영하 162도"


def test_change_form_edit_to_the_text_someone_saved_meanwhile_is_no_conflict(reviewer, pending):
    """Two reviewers typed the same correction: the second was refused with "Changed meanwhile" although the card
    already held what they typed, and had to reload the page to save nothing new."""
    card = pending["b"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    shown = as_shown(reviewer, url)
    card_services.card_update(card=MemoCard.objects.get(pk=card.pk), fact="영하 161.5도")
    response = reviewer.post(url, {**shown, "fact": "영하 161.5도"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    card.refresh_from_db()
    assert card.fact == "영하 161.5도"


def test_change_form_edit_with_needs_review_ticked_sends_the_card_back_to_review(reviewer, pending):
    """An edit approves; ticking "Needs review" with it was ignored (the card stayed approved, "changed
    successfully"). Now the edit is saved and the card goes back to review, flagged by a reviewer."""
    card = pending["b"]
    card_services.card_approve(card=card)
    url = reverse("admin:study_memocard_change", args=[card.pk])
    data = {**as_shown(reviewer, url), "cue": "새 질문", "needs_review": "on"}
    response = reviewer.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    card.refresh_from_db()
    assert (card.cue, card.needs_review, card.flagged_by) == ("새 질문", True, card_services.FLAGGED_BY_REVIEWER)


def test_change_form_edit_of_a_pending_card_says_it_approves_it(reviewer, pending):
    """The box of a pending card shows ticked; SPEC's "an edit approves" is applied, and said."""
    card = pending["b"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    response = reviewer.post(url, {**as_shown(reviewer, url), "cue": "새 질문"}, follow=True)
    assert messages_of(response)[0].startswith("An edit approves the card: it no longer waits for review.")
    card.refresh_from_db()
    assert (card.cue, card.needs_review) == ("새 질문", False)


def test_change_form_duplicate_is_a_form_error(reviewer, pending):
    other = card_candidate_create(question=pending["q1"], card_format="qa", cue="x", fact="에탄")
    card_services.card_approve(card=other)
    card = pending["a"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    data = {"cue": card.cue, "fact": "에탄", "cloze_text": "", "needs_review": "on",
            "evidence-TOTAL_FORMS": "1", "evidence-INITIAL_FORMS": "1", "evidence-MIN_NUM_FORMS": "0",
            "evidence-MAX_NUM_FORMS": "1000", "evidence-0-id": card.evidence.get().pk, "evidence-0-card": card.pk}
    response = reviewer.post(url, data)
    assert response.status_code == 200
    assert f">#{other.pk}</a> (approved) of this user" in str(response.context["adminform"].form.errors)
    card.refresh_from_db()
    assert card.fact == "메탄"


def test_change_form_approval_of_a_card_deleted_meanwhile_says_so_and_logs_nothing(reviewer, pending, monkeypatch):
    card = pending["b"]
    real_approve = card_services.card_approve

    def someone_else_first(*, card: MemoCard) -> bool:  # the learner deletes it between the read and the write
        assert card_services.card_delete(card=MemoCard.objects.get(pk=card.pk)) is True
        return real_approve(card=card)

    monkeypatch.setattr(card_services, "card_approve", someone_else_first)
    url = reverse("admin:study_memocard_change", args=[card.pk])
    data = {"cue": card.cue, "fact": card.fact, "cloze_text": card.cloze_text,
            "evidence-TOTAL_FORMS": "0", "evidence-INITIAL_FORMS": "0", "evidence-MIN_NUM_FORMS": "0",
            "evidence-MAX_NUM_FORMS": "1000"}  # needs_review unticked: approve
    response = reviewer.post(url, data, follow=True)

    # Back to the form, which no longer finds the card (the admin lists live cards only).
    assert response.redirect_chain[0][0] == url
    assert messages_of(response)[0] == "This card was deleted meanwhile; nothing was changed."
    assert not any("successfully" in m for m in messages_of(response))
    card.refresh_from_db()
    assert card.needs_review is True and card.deleted_at is not None
    assert not LogEntry.objects.filter(object_id=str(card.pk)).exists()


def test_card_texts_longer_than_the_api_allows_are_refused(reviewer, pending):
    card = pending["b"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    data = {"cue": "가" * 10_001, "fact": card.fact, "cloze_text": card.cloze_text, "needs_review": "on",
            "evidence-TOTAL_FORMS": "0", "evidence-INITIAL_FORMS": "0", "evidence-MIN_NUM_FORMS": "0",
            "evidence-MAX_NUM_FORMS": "1000"}
    response = reviewer.post(url, data)
    assert response.status_code == 200 and "cue" in response.context["adminform"].form.errors
    response = post_action(reviewer, action="edit", card_id=card.pk, cue="가" * 10_001, fact=card.fact,
                           cloze_text=card.cloze_text)
    assert any(m.startswith(f"Card #{card.pk} was not saved: cue:") for m in messages_of(response))
    card.refresh_from_db()
    assert card.cue == "LNG"


def test_change_form_delete_is_soft(reviewer, pending):
    card = pending["c"]
    response = reviewer.post(reverse("admin:study_memocard_delete", args=[card.pk]), {"post": "yes"})
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.deleted_at is not None
    assert outbox() == [card.pk]


def test_actions_come_back_to_their_group_and_tabs_keep_the_filters(reviewer, pending, user):
    page = reviewer.get(reverse(QUEUE) + f"?status=pending&format=qa&user={user.pk}").content.decode()
    # every form returns to where it was (the group's anchor: after an approval, the next group is there)
    assert f'value="{reverse(QUEUE)}?status=pending&amp;format=qa&amp;user={user.pk}#group-1"' in page
    assert f'href="?status=approved&amp;format=qa&amp;user={user.pk}"' in page
    assert 'nav-sidebar' not in page  # the cards get the page's width

    response = reviewer.post(reverse(ACTION), {"next": f"{reverse(QUEUE)}?status=pending#group-2",
                                               "action": "approve", "card_id": pending["c"].pk})
    assert response.status_code == 302 and response["Location"].endswith("#group-2")


def test_groups_with_a_flagged_card_come_first_and_keep_their_origin(reviewer, pending, user):
    later = card_candidate_create(question=QuestionFactory(study_topic=pending["q1"].study_topic),
                                  card_format="qa", cue="나중", fact="나중 카드")
    MemoCard.objects.filter(pk=later.pk).update(flagged_by="user", flagged_at=timezone.now())
    response = reviewer.get(reverse(QUEUE))
    groups = response.context["groups"]
    assert groups[0].cards[0].pk == later.pk  # disputed by the learner: first, although created last
    assert [g.source_question_id for g in groups[1:]] == [pending["q1"].pk, pending["q2"].pk]
    page = response.content.decode()
    flagged_card = page[page.index(f'id="card-{later.pk}"'):page.index(f'id="card-{pending["a"].pk}"')]
    assert "Sent back by the learner" in flagged_card and "Machine-made" in flagged_card


def test_an_edit_that_was_not_saved_comes_back_in_its_card_once(reviewer, pending):
    card = pending["a"]
    response = post_action(reviewer, action="edit", card_id=card.pk, cue="고친 큐 <b>", fact="", cloze_text="")
    assert any("was not saved" in m for m in messages_of(response))
    page = response.content.decode()
    assert 'name="cue" rows="1" dir="auto" maxlength="10000">고친 큐 &lt;b&gt;</textarea>' in page  # as typed, escaped
    assert 'class="rq-card rq-unsaved"' in page
    card.refresh_from_db()
    assert card.cue == "LNG 주성분?" and card.needs_review  # nothing saved
    again = reviewer.get(reverse(QUEUE)).content.decode()
    assert "고친 큐" not in again and 'name="cue" rows="1" dir="auto" maxlength="10000">LNG 주성분?</textarea>' in again


def test_a_reviewer_who_may_change_but_not_delete_cards_cannot_delete(client, pending):
    from django.contrib.auth.models import Permission

    staff = UserFactory(username="changer", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="study", codename__in=["view_memocard", "change_memocard"]))
    client.force_login(staff)
    page = client.get(reverse(QUEUE)).content.decode()
    assert 'value="approve"' in page and 'value="delete"' not in page
    response = client.post(reverse(ACTION), {"action": "delete", "card_id": pending["a"].pk, "next": reverse(QUEUE)})
    assert response.status_code == 403
    assert MemoCard.objects.filter(pk=pending["a"].pk, deleted_at__isnull=True).exists()
    changelist = client.post(reverse("admin:study_memocard_changelist"),
                             {"action": "soft_delete_selected", "post": "yes", "_selected_action": [pending["b"].pk]})
    assert changelist.status_code in (200, 302)
    assert MemoCard.objects.filter(pk=pending["b"].pk, deleted_at__isnull=True).exists()


def staff_with(client, *codenames: str):
    from django.contrib.auth.models import Permission

    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="study", codename__in=codenames))
    client.force_login(staff)
    return client


def test_staff_without_a_card_permission_cannot_open_the_queue(client, pending):
    staff_with(client, "view_question")
    assert client.get(reverse(QUEUE)).status_code == 403


def test_a_reviewer_who_may_only_view_cards_sees_the_queue_but_changes_nothing(client, pending):
    staff_with(client, "view_memocard")
    page = client.get(reverse(QUEUE))
    assert page.status_code == 200 and 'value="approve"' not in page.content.decode()
    for data in (
        {"action": "approve", "card_id": pending["a"].pk},
        {"action": "approve_question", "question_id": pending["q1"].pk},
        {"action": "flag", "card_id": pending["c"].pk},
    ):
        assert client.post(reverse(ACTION), {"next": reverse(QUEUE), **data}).status_code == 403
    assert MemoCard.objects.filter(needs_review=True).count() == 3
    assert outbox() == [] and not LogEntry.objects.exists()


@pytest.mark.parametrize("value", ["²", "①", "١٢", "0", "-3", "1" * 30])
def test_odd_ids_in_review_actions_are_handled(reviewer, pending, value):
    for data in ({"action": "approve", "card_id": value}, {"action": "approve_question", "question_id": value}):
        response = post_action(reviewer, **data)
        assert response.status_code == 200
        assert any("no longer exists" in m for m in messages_of(response))


def history(card) -> list[tuple[str, str]]:
    """(user, message) of the card's admin history (its "History" page), oldest first."""
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(MemoCard), object_id=str(card.pk), action_flag=CHANGE
    ).order_by("id")
    return [(entry.user.username, entry.get_change_message()) for entry in entries]


def test_review_queue_actions_are_kept_in_each_cards_history(reviewer, pending, user):
    """The change form's edits are in a card's History page; the same edits made in the review queue are too
    (who approved, edited, flagged or deleted a card, and when)."""
    post_action(reviewer, action="approve", card_id=pending["c"].pk)
    post_action(reviewer, action="flag", card_id=pending["c"].pk)
    post_action(reviewer, action="edit", card_id=pending["c"].pk, cue="부취제?", fact="THT (테트라하이드로티오펜)",
                cloze_text="")
    post_action(reviewer, action="approve_question", question_id=pending["q1"].pk)
    post_action(reviewer, action="delete", card_id=pending["a"].pk)
    assert history(pending["c"]) == [
        ("reviewer", "Approved in the review queue."),
        ("reviewer", "Flagged back to review in the review queue."),
        ("reviewer", "Changed fact and approved in the review queue."),
    ]
    question_id = pending["q1"].pk
    approved_with_question = ("reviewer", f"Approved with every card of question #{question_id} in the review queue.")
    assert history(pending["a"]) == [approved_with_question, ("reviewer", "Deleted (soft) in the review queue.")]
    assert history(pending["b"]) == [approved_with_question]
    page = reviewer.get(reverse("admin:study_memocard_history", args=[pending["c"].pk])).content.decode()
    assert "Changed fact and approved in the review queue." in page


def test_changelist_bulk_actions_are_kept_in_each_cards_history(reviewer, pending):
    url = reverse("admin:study_memocard_changelist")
    reviewer.post(url, {"action": "approve_selected", "_selected_action": [pending["a"].pk]})
    reviewer.post(url, {"action": "flag_selected", "_selected_action": [pending["a"].pk]})
    reviewer.post(url, {"action": "soft_delete_selected", "post": "yes", "_selected_action": [pending["a"].pk]})
    assert history(pending["a"]) == [
        ("reviewer", "Approved."), ("reviewer", "Flagged back to review."), ("reviewer", "Deleted (soft)."),
    ]


def test_delete_in_the_queue_asks_first(reviewer, pending):
    """The Delete button carries its question and the page loads the script that asks it (an inline onclick
    would be blocked by the Content-Security-Policy); the browser test clicks it."""
    html = reviewer.get(reverse(QUEUE)).content.decode()
    assert f'value="delete" class="rq-btn rq-btn-delete" data-confirm="Delete card #{pending["a"].pk}?' in html
    assert '<script src="/static/study/admin/review_queue.js" defer></script>' in html


def test_the_admin_has_no_view_site_link_to_a_missing_page(reviewer, client):
    assert client.get("/").status_code == 404  # the server is an API: nothing at its root
    index = reviewer.get(reverse("admin:index")).content.decode()
    assert "View site" not in index


def test_the_card_list_says_in_words_whether_a_card_waits_for_review(reviewer, pending, user):
    """Django's boolean icons showed a green tick for `needs_review` on pending cards, which read as "fine"."""
    approved = MemoCardFactory(user=user, needs_review=False)
    sent_back = MemoCardFactory(user=user, needs_review=True, flagged_by="user")
    table = reviewer.get(reverse("admin:study_memocard_changelist")).content.decode()
    table = table.split('id="result_list"', 1)[1].split("</table>", 1)[0]
    rows = {card.pk: row for row in table.split("<tr")[2:] for card in (pending["a"], approved, sent_back)
            if f'name="_selected_action" value="{card.pk}"' in row}
    assert "Waiting for review" in rows[pending["a"].pk] and "icon-yes" not in rows[pending["a"].pk]
    assert "sent back" not in rows[pending["a"].pk]
    assert "Approved" in rows[approved.pk] and "Waiting for review" not in rows[approved.pk]
    assert "Waiting for review (sent back by the learner)" in rows[sent_back.pk]
    # A long card is cut in the list (one of a few thousand characters made its row screens tall)
    long_card = MemoCardFactory(user=user, cue="질" * 3000, fact="답" * 4000)
    table = reviewer.get(reverse("admin:study_memocard_changelist")).content.decode()
    assert "질" * 80 in table and "질" * 81 not in table and "답" * 80 in table and "답" * 81 not in table
    assert long_card.pk in [card.pk for card in reviewer.get(
        reverse("admin:study_memocard_changelist")).context["cl"].result_list]
    # The column still sorts (pending cards together).
    ordered = reviewer.get(reverse("admin:study_memocard_changelist"), {"o": "6"}).context["cl"].result_list
    assert [card.needs_review for card in ordered] == sorted(card.needs_review for card in ordered)


def test_a_card_deleted_between_the_read_and_the_action_is_reported_not_approved(reviewer, pending, monkeypatch):
    """Another reviewer deletes the card after this request read it: the approval changes nothing, says so, and
    writes no history entry (the service's conditional update finds no live row)."""
    from django.contrib.admin.models import LogEntry

    from study.services import cards as card_services

    real_approve = card_services.card_approve

    def deleted_first(*, card):
        MemoCard.objects.filter(pk=card.pk).update(deleted_at=timezone.now())
        return real_approve(card=card)

    monkeypatch.setattr(card_services, "card_approve", deleted_first)
    response = post_action(reviewer, action="approve", card_id=pending["a"].pk)
    assert messages_of(response) == ["That card no longer exists."]
    card = MemoCard.objects.get(pk=pending["a"].pk)
    assert card.needs_review is True and card.reviewed_at is None
    assert not LogEntry.objects.filter(object_id=str(card.pk)).exists()

    real_bulk = card_services.cards_approve

    def one_deleted_first(*, card_ids):
        MemoCard.objects.filter(pk=pending["b"].pk).update(deleted_at=timezone.now())
        return real_bulk(card_ids=card_ids)

    monkeypatch.setattr(card_services, "cards_approve", one_deleted_first)
    response = reviewer.post(reverse("admin:study_memocard_changelist"), {
        "action": "approve_selected", "_selected_action": [pending["b"].pk, pending["c"].pk]}, follow=True)
    assert "Approved 1 card." in messages_of(response)
    assert MemoCard.objects.get(pk=pending["b"].pk).needs_review is True  # deleted: left as it was
    assert MemoCard.objects.get(pk=pending["c"].pk).needs_review is False
    assert not LogEntry.objects.filter(object_id=str(pending["b"].pk)).exists()
    assert LogEntry.objects.get(object_id=str(pending["c"].pk)).change_message == "Approved."


def test_a_card_deleted_before_the_bulk_soft_delete_reaches_it_is_left_out(reviewer, pending, monkeypatch):
    """"Delete selected (soft)" read the cards while they were live; one deleted by someone else meanwhile is not
    counted as deleted here, nor written to its history (the service's conditional update changed nothing)."""
    from study.services import cards as card_services

    real_delete = card_services.cards_delete

    def deleted_first(*, card_ids):
        MemoCard.objects.filter(pk=pending["b"].pk).update(deleted_at=timezone.now())
        return real_delete(card_ids=card_ids)

    monkeypatch.setattr(card_services, "cards_delete", deleted_first)
    response = reviewer.post(reverse("admin:study_memocard_changelist"), {
        "action": "soft_delete_selected", "post": "yes", "_selected_action": [pending["b"].pk, pending["c"].pk]},
        follow=True)
    assert "Deleted 1 memo card." in messages_of(response)
    assert history(pending["b"]) == []
    assert history(pending["c"]) == [("reviewer", "Deleted (soft).")]


# --- two tabs, two reviewers: what the page showed is not what the card holds any more ------------


def edit_post(card, *, shown: MemoCard | None = None, **fields) -> dict:
    """The card's form as a page that showed `shown` (default: the card as stored now) sends it, with `fields`
    typed in."""
    shown = shown or card
    data = {"action": "edit", "card_id": card.pk}
    for field in ("cue", "fact", "cloze_text"):
        data[field] = fields.get(field, getattr(shown, field))
        data[f"{field}_was"] = getattr(shown, field)
    return data


def test_two_tabs_editing_other_fields_of_one_card_both_land(reviewer, pending):
    card = pending["b"]
    page = MemoCard.objects.get(pk=card.pk)  # both tabs show the card as it is now
    response = post_action(reviewer, **edit_post(card, shown=page, fact="영하 161.5도"))
    assert messages_of(response) == [f"Saved and approved card #{card.pk}."]
    response = post_action(reviewer, **edit_post(card, shown=page, cue="LNG 액화 온도"))  # the stale tab
    assert messages_of(response) == [f"Saved and approved card #{card.pk}."]
    card.refresh_from_db()
    assert (card.cue, card.fact) == ("LNG 액화 온도", "영하 161.5도")  # the first tab's fact was written back


def test_an_edit_of_a_field_someone_changed_meanwhile_is_refused_and_kept(reviewer, pending):
    card = pending["a"]
    page = MemoCard.objects.get(pk=card.pk)
    post_action(reviewer, **edit_post(card, shown=page, fact="메테인"))
    approved_tab = f"{reverse(QUEUE)}?status=approved"  # where the card is now
    response = post_action(reviewer, next=approved_tab, **edit_post(card, shown=page, fact="CH4\r\n(메탄)"))
    assert messages_of(response)[0].startswith(f"Card #{card.pk} was changed meanwhile (fact:")
    card.refresh_from_db()
    assert card.fact == "메테인"
    assert "CH4\r\n(메탄)</textarea>" in html.unescape(response.content.decode())  # the edit comes back to redo
    # typed again over what the card holds now, it saves; the same text as the other tab is no conflict
    response = post_action(reviewer, **edit_post(card, shown=page, fact="메테인", cue="주성분?"))
    assert messages_of(response) == [f"Saved and approved card #{card.pk}."]
    card.refresh_from_db()
    assert (card.cue, card.fact) == ("주성분?", "메테인")


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_saving_one_card_at_once_are_compared_one_after_the_other(reviewer, pending):
    """Both had been compared with the row as it was before either saved: both were told "Saved and approved", and
    the later fact replaced the earlier unannounced."""
    card = pending["a"]
    page = MemoCard.objects.get(pk=card.pk)
    response = while_holding(
        lambda: card_services.card_update(card=MemoCard.objects.get(pk=card.pk), fact="메테인"),  # the other's save
        then=lambda: post_action(reviewer, **edit_post(card, shown=page, fact="CH4")))
    # (the other's save approved the card: it left the Pending tab the reviewer comes back to)
    assert messages_shown(response) == [
        f"Card #{card.pk} was changed meanwhile and is no longer on this page; your edit, not saved, was fact: «CH4»."]
    card.refresh_from_db()
    assert card.fact == "메테인"


@pytest.mark.django_db(transaction=True)  # as a server runs: no test transaction around the request
def test_a_post_to_a_cards_history_page_shows_the_page(reviewer, pending):
    """The change form's locked read ran for every POST: the history page reads the card outside a transaction,
    and PostgreSQL's FOR UPDATE there was a 500."""
    response = reviewer.post(reverse("admin:study_memocard_history", args=[pending["a"].pk]))
    assert response.status_code == 200


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
def test_two_reviewers_saving_one_card_on_its_change_form_at_once_are_compared_one_after_the_other(reviewer, pending):
    card = pending["b"]
    url = reverse("admin:study_memocard_change", args=[card.pk])
    shown = as_shown(reviewer, url)
    response = while_holding(
        lambda: card_services.card_update(card=MemoCard.objects.get(pk=card.pk), fact="영하 161.5도"),
        then=lambda: reviewer.post(url, {**shown, "fact": "영하 160도"}))
    assert response.status_code == 200  # the form again, with the error
    assert "Changed meanwhile" in " ".join(response.context["adminform"].form.errors["fact"])
    card.refresh_from_db()
    assert card.fact == "영하 161.5도"


def test_an_edit_refused_for_a_card_that_left_the_page_is_shown_in_a_message(reviewer, pending):
    """Two reviewers on the Pending tab edit one card; the first saves (and so approves it), the second is refused:
    "your edit is kept in its fields", but the card is on the Approved tab now, and the edit was dropped unseen."""
    card = pending["a"]
    page = MemoCard.objects.get(pk=card.pk)
    post_action(reviewer, **edit_post(card, shown=page, fact="메테인"))
    response = post_action(reviewer, **edit_post(card, shown=page, fact="CH4 <메탄>"))  # back to the Pending tab
    assert card.pk not in card_ids(response)
    link = reverse("admin:study_memocard_change", args=[card.pk])
    # one message, naming only what this reviewer typed (it had also said "the page shows what it holds now; your
    # edit is kept in its fields", untrue here, and listed the cue it showed unchanged)
    assert messages_of(response) == [
        f'Card <a href="{link}">#{card.pk}</a> was changed meanwhile and is no longer on this page; your edit, not '
        "saved, was fact: «CH4 &lt;메탄&gt;»."]
    assert not any("no longer on this page" in m for m in messages_of(reviewer.get(reverse(QUEUE))))  # once


def test_an_unsaved_edit_of_a_card_that_left_the_page_names_only_the_fields_typed(reviewer, pending):
    card = pending["b"]
    page = MemoCard.objects.get(pk=card.pk)
    card_services.card_approve(card=card)  # by someone else: the card is on the Approved tab now
    response = post_action(reviewer, **edit_post(card, shown=page, cue="", cloze_text="LNG는 ____ 도에서"))
    link = reverse("admin:study_memocard_change", args=[card.pk])
    assert messages_of(response)[0].startswith(f"Card #{card.pk} was not saved: cue:")
    assert messages_of(response)[1:] == [
        f'Card <a href="{link}">#{card.pk}</a> is no longer on this page; your edit, not saved, was cue: «»; '
        "cloze text: «LNG는 ____ 도에서»."]  # not the fact it showed unchanged


def test_line_breaks_as_browsers_send_them_are_no_edit(reviewer, pending):
    card = pending["b"]
    MemoCard.objects.filter(pk=card.pk).update(fact="영하\n162도")
    card.refresh_from_db()
    data = edit_post(card, fact="영하\r\n162도", cue="새 큐")
    data["fact_was"] = "영하\r\n162도"
    assert messages_of(post_action(reviewer, **data)) == [f"Saved and approved card #{card.pk}."]
    assert history(card)[-1][1] == "Changed cue and approved in the review queue."


def test_approving_or_flagging_a_card_already_in_that_state_says_so_and_logs_nothing(reviewer, pending, user):
    card = pending["a"]
    post_action(reviewer, action="approve", card_id=card.pk)
    logged = LogEntry.objects.count()
    response = post_action(reviewer, action="approve", card_id=card.pk)  # the second tab
    assert messages_of(response) == [f"Card #{card.pk} was approved already; nothing was changed."]
    assert LogEntry.objects.count() == logged

    flagged = pending["c"]
    card_services.card_approve(card=flagged)
    card_services.card_flag(card=flagged)  # the learner sent it back
    response = post_action(reviewer, action="flag", card_id=flagged.pk)
    assert messages_of(response) == [f"Card #{flagged.pk} was waiting for review already; nothing was changed."]
    flagged.refresh_from_db()
    assert flagged.flagged_by == "user"  # still says who sent it back

    response = post_action(reviewer, action="approve_question", question_id=pending["q1"].pk)
    assert messages_of(response) == [f"Approved 1 card of question #{pending['q1'].pk}."]  # b; a was approved
    response = post_action(reviewer, action="approve_question", question_id=pending["q1"].pk)
    assert messages_of(response) == [
        f"No card of question #{pending['q1'].pk} waits for review (approved meanwhile); nothing was changed."]


def test_bulk_actions_count_what_they_changed(reviewer, pending):
    card_services.card_flag(card=card_services.card_update(card=pending["c"], fact="THT (테트라하이드로티오펜)"))
    changelist = reverse("admin:study_memocard_changelist")
    ids = [pending[key].pk for key in ("a", "b", "c")]
    card_services.card_approve(card=pending["a"])
    response = reviewer.post(changelist, {"action": "flag_selected", "_selected_action": ids}, follow=True)
    assert messages_of(response) == ["Flagged 1 card back to review.",
                                     "2 cards left as they were: waiting for review already (or deleted meanwhile)."]
    assert MemoCard.objects.get(pk=pending["c"].pk).flagged_by == "user"
    response = reviewer.post(changelist, {"action": "approve_selected", "_selected_action": [pending["a"].pk]},
                             follow=True)
    assert messages_of(response) == ["Approved 1 card."]
    response = reviewer.post(changelist, {"action": "approve_selected", "_selected_action": [pending["a"].pk]},
                             follow=True)
    assert messages_of(response) == ["Approved 0 cards.",
                                     "1 card left as it was: approved already (or deleted meanwhile)."]


def test_flagging_more_cards_than_one_action_takes_changes_nothing(reviewer, pending, monkeypatch):
    from studyserver import admin as site_admin

    monkeypatch.setattr(site_admin, "BULK_ACTION_MAX", 2)
    for key in ("a", "b", "c"):
        card_services.card_approve(card=pending[key])
    response = reviewer.post(reverse("admin:study_memocard_changelist"), {
        "action": "flag_selected", "select_across": "1", "_selected_action": [pending["a"].pk]}, follow=True)
    assert messages_of(response) == [
        "3 memo cards are selected; one action takes at most 2. Nothing was changed: narrow the list with its "
        "filters."]
    assert not MemoCard.objects.filter(needs_review=True).exists()


def test_a_filter_that_matches_nothing_does_not_say_the_queue_is_empty(reviewer, pending):
    page = reviewer.get(reverse(QUEUE), {"q": "없는 글자"}).content.decode()
    assert "No pending cards match these filters." in page
    assert "Every card is approved" not in page
    assert "Every card is approved" not in reviewer.get(reverse(QUEUE)).content.decode()  # 3 wait
    MemoCard.objects.update(needs_review=False, reviewed_at=timezone.now())
    assert "Nothing waits for review. Every card is approved." in reviewer.get(reverse(QUEUE)).content.decode()


def test_each_card_form_says_what_it_showed(reviewer, pending):
    page = reviewer.get(reverse(QUEUE)).content.decode()
    card = pending["b"]
    for field in ("cue", "fact", "cloze_text"):
        assert f'name="{field}_was" value="{html.escape(getattr(card, field))}"' in page


# --- a change and its history entry are kept together --------------------------------------------------------


def history_of(card: MemoCard) -> list[str]:
    return list(LogEntry.objects.filter(object_id=str(card.pk)).values_list("change_message", flat=True))


@pytest.mark.django_db(transaction=True)  # each service call commits on its own without the fix
@pytest.mark.postgresql
@pytest.mark.parametrize("action", ["approve_selected", "flag_selected"])
def test_a_bulk_action_whose_history_fails_changes_no_card(reviewer, pending, action):
    """The second card's history entry fails: without one transaction the first card stayed changed and published
    with no history, and a retry could no longer log it."""
    cards = [pending["a"], pending["c"]]
    if action == "flag_selected":
        MemoCard.objects.filter(pk__in=[c.pk for c in cards]).update(needs_review=False, reviewed_at=timezone.now())
    before = list(MemoCard.objects.filter(pk__in=[c.pk for c in cards]).order_by("id").values_list("needs_review"))
    outbox = PublishOutbox.objects.count()
    reviewer.raise_request_exception = False
    url = reverse("admin:study_memocard_changelist")

    with failing("django_admin_log"):
        response = reviewer.post(url, {"action": action, "_selected_action": [c.pk for c in cards]})

    assert response.status_code == 500
    assert list(MemoCard.objects.filter(pk__in=[c.pk for c in cards]).order_by("id").values_list("needs_review")) \
        == before
    assert PublishOutbox.objects.count() == outbox
    reviewer.post(url, {"action": action, "_selected_action": [c.pk for c in cards]})
    assert all(len(history_of(card)) == 1 for card in cards)


@pytest.mark.django_db(transaction=True)  # each service call commits on its own without the fix
@pytest.mark.postgresql
@pytest.mark.parametrize("action", ["approve", "flag", "delete", "edit", "approve_question"])
def test_a_review_queue_action_whose_history_fails_changes_nothing(reviewer, pending, action):
    card = pending["a"]
    if action == "flag":
        MemoCard.objects.filter(pk=card.pk).update(needs_review=False, reviewed_at=timezone.now())
    data = {"action": action, "card_id": card.pk}
    if action == "edit":
        data.update(cue=card.cue, fact="고친 사실", cloze_text=card.cloze_text)
    if action == "approve_question":
        data = {"action": action, "question_id": card.source_question_id}
    before = list(MemoCard.objects.order_by("id").values_list("needs_review", "deleted_at", "fact"))
    reviewer.raise_request_exception = False

    with failing("django_admin_log"):
        response = reviewer.post(reverse(ACTION), {"next": reverse(QUEUE), **data})

    assert response.status_code == 500
    assert list(MemoCard.objects.order_by("id").values_list("needs_review", "deleted_at", "fact")) == before
    assert not PublishOutbox.objects.filter(kind="study_card").exists()
    post_action(reviewer, **data)
    assert len(history_of(card)) == 1


def test_the_approve_all_button_and_messages_count_in_words(reviewer, pending):
    """"Approve all 1 card", "Approved 1 card(s)": the button and the messages say one card as one."""
    page = reviewer.get(reverse(QUEUE)).content.decode()
    assert "Approve all 2 cards of this question</button>" in page  # q1: a and b
    assert "Approve the card of this question</button>" in page  # q2: c alone
    assert "Approve all 1 card" not in page
    response = post_action(reviewer, action="approve_question", question_id=pending["q2"].pk,
                           expected=str(pending["c"].pk))
    assert messages_of(response) == [f"Approved 1 card of question #{pending['q2'].pk}."]


def test_the_approved_tab_does_not_say_an_edit_approves(reviewer, pending):
    card_services.card_approve(card=pending["a"])
    approved = reviewer.get(f"{reverse(QUEUE)}?status=approved").content.decode()
    assert "an edit is saved as the final version." in approved
    assert "and approves the card" not in approved
    pending_tab = reviewer.get(reverse(QUEUE)).content.decode()
    assert "an edit is saved as the final version and approves the card." in pending_tab


@pytest.mark.parametrize("expected", ["x,y", "", "1,,2"])
def test_approve_all_with_an_unreadable_list_of_the_cards_shown_approves_none(reviewer, pending, expected):
    """It approved every waiting card, as a page from before the list did: unchecked."""
    response = post_action(reviewer, action="approve_question", question_id=pending["q1"].pk, expected=expected)
    assert messages_of(response) == [f"The page did not say which cards of question #{pending['q1'].pk} it showed; "
                                     "nothing was approved. Reload the page."]
    assert MemoCard.objects.filter(pk__in=[pending["a"].pk, pending["b"].pk], needs_review=True).count() == 2


def _queries_of(callable_) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        callable_()
    return len(queries)


def test_bulk_soft_delete_and_its_history_take_the_same_queries_for_3_cards_as_for_40(reviewer, user):
    """Five statements per card (lock, UPDATE, publish request, savepoint, history INSERT) made "delete selected"
    of a page of 100 cards 500 statements; now a handful, however many."""
    counts = []
    for n in (1, 3, 40):  # (the first warms the content-type cache)
        ids = [card.pk for card in pending_cards(n, user=user)]
        counts.append(_queries_of(lambda ids=ids: reviewer.post(reverse("admin:study_memocard_changelist"), {
            "action": "soft_delete_selected", "post": "yes", "_selected_action": ids})))
        assert MemoCard.objects.filter(pk__in=ids, deleted_at__isnull=False).count() == n
        assert LogEntry.objects.filter(object_id__in=[str(i) for i in ids],
                                       change_message="Deleted (soft).").count() == n
        assert set(PublishOutbox.objects.filter(source_id__in=ids).values_list("source_id", flat=True)) == set(ids)
    assert counts[1] == counts[2], counts


def test_approving_a_questions_cards_writes_their_history_in_the_same_queries_for_3_cards_as_for_40(reviewer, user):
    counts = []
    for n in (1, 3, 40):  # (the first warms the content-type cache)
        question = QuestionFactory(study_topic__user=user)
        ids = [card.pk for card in question_cards(n, question, user=user)]
        counts.append(_queries_of(lambda question=question: reviewer.post(
            reverse(ACTION), {"next": reverse(QUEUE), "action": "approve_question", "question_id": question.pk})))
        assert MemoCard.objects.filter(pk__in=ids, needs_review=False).count() == n
        assert LogEntry.objects.filter(
            object_id__in=[str(i) for i in ids],
            change_message=f"Approved with every card of question #{question.pk} in the review queue.").count() == n
    assert counts[1] == counts[2], counts
