"""Explanations: retrieval with PostgreSQL full-text search, the extractive explainer, idempotency, races."""


import pytest

from publishing.models import PublishOutbox
from study.explain.retrieval import passages_for_question, query_terms, split_passages
from study.models import MemoCard, QuestionExplanation
from study.services.card_generation import cloze_from_passage
from study.services.explanations import _facts, question_explain
from study.tasks import explain_question
from study.tests.factories import DocumentFactory, QuestionFactory, StudyTopicFactory, TopicDocumentFactory
from studyserver.testing import run_concurrently

LNG_NOTE = (
    "# 액화천연가스\n\n"
    "LNG의 주성분은 메탄이며 영하 162도에서 액화된다.\n\n"
    "프로판은 LPG의 주성분이다. 부탄도 LPG에 들어 있다.\n\n"
    "가스 누출 시에는 밸브를 먼저 잠근다."
)


def link_document(topic, text: str, *, status: str = "done", title: str = "가스 노트", **extra):
    document = DocumentFactory(user=topic.user, title=title, extract_status=status, extracted_text=text, **extra)
    TopicDocumentFactory(topic=topic, document=document)
    return document


@pytest.fixture
def question(user):
    return QuestionFactory(
        study_topic=StudyTopicFactory(user=user),
        question_text="LNG의 주성분은 무엇인가?",
        choices=["메탄", "에탄", "프로판", "부탄"],
        correct_choice=1,
    )


@pytest.mark.django_db
class TestRetrieval:
    def test_query_terms_strip_particles_and_stopwords(self):
        assert query_terms("다음 중 LNG의 주성분은 무엇인가?", "메탄") == ["lng", "주성분", "메탄"]

    def test_split_passages_paragraphs_lists_and_long_text(self):
        text = "제목\n\n첫 문단 한 줄\n이어지는 줄\n- 항목 하나\n- 항목 둘\n\n" + "긴 문장입니다. " * 80
        passages = split_passages(text)
        assert passages[:4] == ["제목", "첫 문단 한 줄 이어지는 줄", "- 항목 하나", "- 항목 둘"]
        assert len(passages) > 5
        assert all(len(p) <= 600 for p in passages)

    def test_a_long_japanese_paragraph_is_cut_at_its_sentences(self):
        """Without spaces after 。 it was cut every 600 characters, mid-word."""
        sentence = "情報セキュリティの3要素は機密性、完全性、可用性である。"
        passages = split_passages(sentence * 40)
        assert len(passages) > 1 and all(p.endswith("である。") for p in passages)

    def test_a_markdown_heading_alone_is_no_passage(self, question):
        """A heading was a passage of its own: "# 가연성 가스의 폭발범위 (공기 중)" was cited as a question's
        evidence, `#` and all. Followed by its text on the next line, it is read as that text's first words."""
        text = "# 폭발범위\n\n| 메탄 | 5~15% |\n\n## 정의\nLNG는 메탄이 주성분이다.\n\n#1 항목"
        assert split_passages(text) == ["| 메탄 | 5~15% |", "정의 LNG는 메탄이 주성분이다.", "#1 항목"]
        link_document(question.study_topic, "# LNG 주성분 메탄\n\nLNG는 영하 162도에서 액화된다.")
        assert [p.snippet for p in passages_for_question(_facts(question))] == ["LNG는 영하 162도에서 액화된다."]

    def test_a_table_row_is_a_passage_of_its_own(self):
        rows = ["| 가스 | 공업용 | 의료용 |", "|---|---|---|", "| 산소 | 녹색 | 백색 |", "| 액화암모니아 | 백색 | - |"]
        assert split_passages("\n".join(["용기 도색", *rows])) == ["용기 도색", *rows]

    def test_best_passage_from_live_extracted_topic_documents_only(self, question, other_user):
        good = link_document(question.study_topic, LNG_NOTE)
        link_document(question.study_topic, "LNG 메탄 주성분 (삭제된 문서)", deleted_at=good.created_at)
        link_document(question.study_topic, "LNG 메탄 주성분 (추출 대기)", status="pending")
        elsewhere = StudyTopicFactory(user=question.user)
        link_document(elsewhere, "LNG 주성분 메탄 (다른 주제)")
        passages = passages_for_question(_facts(question))
        assert [p.document_id for p in passages] == [good.id] * len(passages)
        assert passages[0].snippet == "LNG의 주성분은 메탄이며 영하 162도에서 액화된다."
        assert passages[0].rank > 0
        assert all("밸브" not in p.snippet for p in passages)

    def test_passage_with_answer_outranks_one_without(self, question):
        link_document(question.study_topic, "LNG 주성분 LNG 주성분 분석 방법.\n\nLNG는 메탄으로 이루어진다.")
        passages = passages_for_question(_facts(question))
        assert passages[0].snippet == "LNG는 메탄으로 이루어진다."

    def test_unsegmented_japanese_falls_back_to_overlap(self, user):
        q = QuestionFactory(study_topic__user=user, question_text="LNGの主成分は何か", choices=["メタン", "エタン"])
        doc = link_document(q.study_topic, "液化天然ガスの主成分はメタンです。")
        passages = passages_for_question(_facts(q))
        assert [(p.document_id, p.snippet) for p in passages] == [(doc.id, "液化天然ガスの主成分はメタンです。")]


    def test_a_japanese_answer_worded_otherwise_than_the_notes_finds_its_passage(self, user):
        """Read as whole clauses, Japanese matched only an answer copied word for word from the notes."""
        q = QuestionFactory(study_topic__user=user, question_text="NATの説明として、適切なものはどれか。",
                            choices=["社内のプライベートアドレスをグローバルアドレスに置き換える", "名前を引く"])
        note = ("NATは、プライベートIPアドレスをグローバルIPアドレスに変換する技術である。\n\n"
                "DNSサーバは、ドメイン名をIPアドレスに変換する。")
        doc = link_document(q.study_topic, note)
        terms = ["nat", "社内", "プライベートアドレス", "グローバルアドレス"]
        assert query_terms(q.question_text, q.choices[0]) == terms
        passages = passages_for_question(_facts(q))
        assert passages and passages[0].document_id == doc.id
        assert passages[0].snippet.startswith("NATは")

    @pytest.mark.postgresql  # full-text search is PostgreSQL's; elsewhere every question is ranked by overlap
    def test_japanese_is_ranked_by_overlap_not_by_postgresql_full_text(self, user):
        """The `simple` parser reads a Japanese clause as one word: with full-text search on Japanese, only the
        heading that starts with "NAT" matched, and the paragraph that holds the answer ranked 0 and was left out."""
        q = QuestionFactory(study_topic__user=user, question_text="NATの説明として、適切なものはどれか。",
                            choices=["プライベートアドレスをグローバルアドレスに置き換える", "名前を引く"],
                            correct_choice=1)
        link_document(q.study_topic, "NATとは何か\n\nこれはプライベートアドレスをグローバルアドレスに置き換える技術。")
        passages = passages_for_question(_facts(q))
        assert passages and passages[0].snippet == "これはプライベートアドレスをグローバルアドレスに置き換える技術。"

    def test_a_japanese_sentence_is_not_cut_inside_a_quotation(self):
        """A 。 that ends a quoted sentence (「…。」) is no sentence end: cut there, a passage began with 」と…述べた。
        and the quotation lost its speaker."""
        sentence = ("彼は「情報セキュリティの3要素は機密性、完全性、可用性である。」"
                    "と講師は授業の最初にはっきりと述べた。")
        passages = split_passages(sentence * 30)
        assert len(passages) > 1 and all(p.endswith("と述べた。") and p.startswith("彼は「") for p in passages)

    def test_japanese_words_are_cut_into_kanji_katakana_and_latin_runs(self):
        assert query_terms("ランサムウェアの説明として適切なものは", "ファイルを暗号化して金銭を要求する") == [
            "ランサムウェア", "ファイル", "暗号化", "金銭", "要求"]
        assert query_terms("「〜ざるを得ない」の意味は") == ["ざるを得ない"]  # a grammar point of kana stays whole
        assert query_terms("LNG의 주성분은 무엇인가?", "메탄") == ["lng", "주성분", "메탄"]  # Korean as before

    def test_a_word_of_katakana_and_kanji_without_hiragana_is_japanese(self):
        """Katakana alone counts as Japanese: with hiragana only, "ランサムウェア攻撃" stayed one term that no note
        matched."""
        assert query_terms("ランサムウェア攻撃") == ["ランサムウェア", "攻撃"]

    def test_the_kanji_repeat_mark_stays_in_its_word(self):
        """々 repeats the kanji before it: cut off, "人々" became "人" (one character, no term)."""
        assert query_terms("人々の生活") == ["人々", "生活"]

    def test_a_passage_that_shares_only_a_common_word_is_left_out(self, user):
        """Any rank above 0 was kept: "use" alone brought a cryptography paragraph to an RDP question."""
        q = QuestionFactory(study_topic__user=user, question_text="Which port does RDP use by default?",
                            choices=["3389", "22"])
        link_document(q.study_topic, "RDP uses TCP port 3389 by default.\n\nUse a strong passphrase for keys.")
        assert [p.snippet for p in passages_for_question(_facts(q))] == ["RDP uses TCP port 3389 by default."]

    def test_a_passage_that_shares_most_terms_but_not_the_answer_is_kept(self, user):
        """The cut is 0.3 of the best rank: a passage about the question that lacks the answer (0.75 against the
        answer's boosted 2.0) is still evidence, and a stricter cut dropped it."""
        q = QuestionFactory(study_topic__user=user, question_text="ランサムウェアの金銭要求とは",
                            choices=["暗号化", "削除"], correct_choice=1)
        link_document(q.study_topic, "ランサムウェアは暗号化して金銭を要求する。\n\nランサムウェアの金銭要求に注意。")
        assert [p.snippet for p in passages_for_question(_facts(q))] == [
            "ランサムウェアは暗号化して金銭を要求する。", "ランサムウェアの金銭要求に注意。"]

    def test_the_answer_boost_goes_to_a_passage_with_the_answer_as_a_word_not_inside_one(self, user):
        """The answer "CO" boosted every passage with "contains" or "combustion" in it above the one naming CO."""
        q = QuestionFactory(study_topic__user=user, question_text="Which gas from incomplete combustion is toxic?",
                            choices=["CO", "N2"], correct_choice=1)
        link_document(q.study_topic, "Incomplete combustion of gas contains soot and is toxic to burners.\n\n"
                                     "The toxic gas is CO, from incomplete burning.")
        assert passages_for_question(_facts(q))[0].snippet == "The toxic gas is CO, from incomplete burning."

    def test_the_same_passage_in_two_documents_is_quoted_once(self, user):
        """The notes uploaded as PDF and as DOCX: the explanation quoted one sentence twice, pushing evidence out."""
        q = QuestionFactory(study_topic__user=user, question_text="LNG의 주성분은?", choices=["메탄", "에탄"],
                            correct_choice=1)
        for title in ("요약.pdf", "요약.docx"):
            link_document(q.study_topic, "LNG의 주성분은 메탄이다.\n\nLNG는 -162℃에서 액화된다.", title=title)
        snippets = [p.snippet for p in passages_for_question(_facts(q))]
        assert snippets and len(snippets) == len(set(snippets)), snippets

    def test_a_wrapped_line_that_starts_with_a_number_or_a_minus_goes_on_with_its_sentence(self):
        """A PDF line starting "1.5배" or "-162℃" was read as a list item: the passage (the cited evidence) was cut
        in two. A list item still starts a passage."""
        text = "내압시험압력은 상용압력의\n1.5배 이상으로 한다.\n\nLNG의 비점은\n-162℃이다.\n- 메탄\n1. 에탄"
        assert split_passages(text) == ["내압시험압력은 상용압력의 1.5배 이상으로 한다.", "LNG의 비점은 -162℃이다.",
                                        "- 메탄", "1. 에탄"]

    def test_an_endless_sentence_is_cut_between_words(self):
        """A text without sentence ends (OCR, a table read as one line) was cut every 600 characters, mid-word: the
        cited evidence began and ended in half a word."""
        from study.explain.retrieval import PASSAGE_MAX_CHARS

        words = [f"가스{n}번" for n in range(400)]
        passages = split_passages(" ".join(words))
        assert len(passages) > 1 and all(len(p) <= PASSAGE_MAX_CHARS for p in passages)
        assert [word for p in passages for word in p.split(" ")] == words  # every word whole, in order
        japanese = "あ" * (PASSAGE_MAX_CHARS + 10)  # no space anywhere: cut at the limit, as before
        assert [len(p) for p in split_passages(japanese)] == [PASSAGE_MAX_CHARS, 10]

    def test_korean_list_markers_start_passages_of_their_own(self):
        """①, (1), 가. and Ⅰ. did not: a whole list was one passage, and one cloze blanked the answer in every item."""
        text = "가스의 종류\n① 메탄은 가볍다.\n② 프로판은 무겁다.\n(1) 부탄\n가. 수소\nⅡ. 질소\n가나다 순이다."
        assert split_passages(text) == ["가스의 종류", "① 메탄은 가볍다.", "② 프로판은 무겁다.", "(1) 부탄",
                                        "가. 수소", "Ⅱ. 질소 가나다 순이다."]
        assert cloze_from_passage("① 메탄", "메탄") == ""  # the answer alone after its marker asks nothing

    def test_a_japanese_line_wrap_is_not_read_as_a_space(self):
        """Lines joined with a space turned 完全性 into "完 全性", which no term or answer matched."""
        assert split_passages("情報セキュリティの3要素は機密性、完\n全性、可用性である。\nNAT\nは変換") == [
            "情報セキュリティの3要素は機密性、完全性、可用性である。 NAT は変換"]

    def test_a_large_textbook_read_first_does_not_crowd_the_note_out_of_the_candidates(self, user):
        """Candidates were the first 2,000 passages with a term, in document order: a textbook with a common term
        in 2,500 passages filled them, and the note holding every term and the answer was never ranked (Japanese,
        or SQLite: ranked by overlap)."""
        from study.explain.retrieval import MAX_CANDIDATE_PASSAGES

        q = QuestionFactory(study_topic__user=user, question_text="公開鍵暗号方式で、暗号化に使う鍵はどれか。",
                            choices=["受信者の公開鍵", "送信者の秘密鍵"], correct_choice=1)
        sections = MAX_CANDIDATE_PASSAGES + 500
        link_document(q.study_topic, "\n\n".join(f"第{i}節 暗号化の歴史について述べる。" for i in range(sections)),
                      title="教科書")
        note = link_document(q.study_topic, "公開鍵暗号方式では、送信者は受信者の公開鍵で暗号化し、受信者は秘密鍵で"
                             "復号する。", title="ノート")
        passages = passages_for_question(_facts(q))
        assert passages and passages[0].document_id == note.id, [(p.title, p.snippet) for p in passages]

    def test_long_documents_that_repeat_the_terms_do_not_crowd_out_the_short_note(self, user):
        """Documents were ranked by raw ts_rank and 5 were read: five long texts full of the question's words
        pushed the short note that holds the answer out."""
        from study.explain.retrieval import MAX_DOCUMENTS

        q = QuestionFactory(study_topic__user=user, question_text="Where are EBS snapshots stored?",
                            choices=["Amazon S3", "Amazon EFS"])
        filler = " ".join(["Amazon EBS volumes: snapshots are stored and copied; where the EBS data lives."] * 400)
        for n in range(MAX_DOCUMENTS):
            link_document(q.study_topic, f"Storage guide {n}. {filler}", title=f"guide {n}")
        note = link_document(q.study_topic, "EBS snapshots are stored in Amazon S3.", title="note")
        passages = passages_for_question(_facts(q))
        assert passages and passages[0].document_id == note.id


@pytest.mark.django_db
class TestQuestionExplain:
    def test_extractive_explanation_cards_and_publish(self, question, django_capture_on_commit_callbacks):
        doc = link_document(question.study_topic, LNG_NOTE)
        with django_capture_on_commit_callbacks(execute=False):
            assert question_explain(question_id=question.id) == "created"
        explanation = QuestionExplanation.objects.get(question=question)
        assert explanation.backend == "extractive"
        assert explanation.user_id == question.user_id
        assert explanation.text.startswith("정답: 1번 메탄")
        assert '"LNG의 주성분은 메탄이며 영하 162도에서 액화된다." — 가스 노트' in explanation.text
        assert explanation.passages[0]["document_id"] == doc.id
        assert PublishOutbox.objects.filter(kind="study_question", source_id=question.id).exists()
        cards = {c.format: c for c in MemoCard.objects.filter(source_question=question)}
        assert set(cards) == {"qa", "cloze"}
        assert all(c.needs_review for c in cards.values())

    def test_official_explanation_is_included_and_no_documents_is_said(self, question):
        question.explanation = "메탄(CH4)이 약 90%를 차지한다."
        question.save(update_fields=["explanation"])
        assert question_explain(question_id=question.id) == "created"
        text = QuestionExplanation.objects.get(question=question).text
        assert "해설: 메탄(CH4)이 약 90%를 차지한다." in text
        assert "관련 문단을 찾지 못했습니다" in text
        assert list(MemoCard.objects.filter(source_question=question).values_list("format", flat=True)) == ["qa"]

    def test_already_explained_and_deleted_questions_are_skipped(self, question):
        QuestionExplanation.objects.create(user=question.user, question=question, text="사람이 쓴 해설")
        assert question_explain(question_id=question.id) == "exists"
        assert QuestionExplanation.objects.get(question=question).text == "사람이 쓴 해설"
        assert not MemoCard.objects.exists()
        deleted = QuestionFactory(study_topic=question.study_topic, deleted_at=question.created_at)
        assert question_explain(question_id=deleted.id) == "missing"
        assert question_explain(question_id=10**12) == "missing"
        assert not PublishOutbox.objects.filter(kind="study_question").exists()

    def test_rerun_makes_no_duplicates(self, question):
        link_document(question.study_topic, LNG_NOTE)
        assert explain_question.apply(args=[question.id]).get() == "created"
        assert explain_question.apply(args=[question.id]).get() == "exists"
        assert QuestionExplanation.objects.count() == 1
        assert MemoCard.objects.filter(source_question=question).count() == 2

    def test_query_count_does_not_grow_with_documents(self, question, django_assert_max_num_queries):
        for i in range(8):
            link_document(question.study_topic, f"LNG 메탄 주성분 노트 {i}.\n\n다른 내용 {i}.", title=f"노트 {i}")
        # 4 reads (question, explanation?, documents, passage ranks), then the writes with their savepoints
        with django_assert_max_num_queries(24):
            assert question_explain(question_id=question.id) == "created"


@pytest.mark.django_db(transaction=True)
def test_two_workers_explain_once(user):
    question = QuestionFactory(study_topic__user=user, question_text="LNG의 주성분은?", choices=["메탄", "에탄"])
    link_document(question.study_topic, LNG_NOTE)
    results = run_concurrently(*(lambda: question_explain(question_id=question.id) for _ in range(2)))
    assert sorted(results) == ["created", "exists"]
    assert QuestionExplanation.objects.filter(question=question).count() == 1
    assert MemoCard.objects.filter(source_question=question).count() == 2


@pytest.mark.django_db
class TestExplanationFollowsTheQuestion:
    """An explanation names the answer: it is written from the question as it is when stored, and a new answer
    key (correct_choice, choices) drops it with its unreviewed cards and explains the question again."""

    @pytest.fixture
    def drafts(self, monkeypatch):
        """Every draft the explainer writes, by the answer it was given; `edit` runs right after each draft."""
        from study.services import explanations

        written, edits = [], []
        real = explanations.explanation_draft

        def draft(facts, passages, **options):
            result = real(facts, passages, **options)
            written.append(facts.correct_choice)
            if edits:
                edits.pop(0)()
            return result

        monkeypatch.setattr(explanations, "explanation_draft", draft)
        return written, edits

    def test_an_answer_edited_while_the_explainer_writes_is_explained_as_it_is_now(
        self, question, drafts, settings, django_capture_on_commit_callbacks
    ):
        from study.services.questions import question_update

        settings.CELERY_TASK_ALWAYS_EAGER = True  # the task sent again runs when this one's transaction commits
        written, edits = drafts
        link_document(question.study_topic, LNG_NOTE)
        edits.append(lambda: question_update(question=question, data={"correct_choice": 3}))
        with django_capture_on_commit_callbacks(execute=True):
            assert question_explain(question_id=question.id) == "changed"
        assert written == [1, 3]  # one draft a run: the second run drew up the new answer
        assert QuestionExplanation.objects.get(question=question).text.startswith("정답: 3번 프로판")
        facts = set(MemoCard.objects.filter(source_question=question).values_list("fact", flat=True))
        assert facts and all("프로판" in fact and "메탄" not in fact for fact in facts), facts

    def test_a_draft_of_an_edited_question_is_dropped_and_the_task_sent_again(
        self, question, drafts, monkeypatch, django_capture_on_commit_callbacks
    ):
        from study.services.questions import question_update
        from study.tasks import explain_question

        written, edits = drafts
        edits.append(lambda: question_update(question=question, data={"question_text": "LNG의 주성분은?"}))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert question_explain(question_id=question.id) == "changed"
        assert written == [1]  # one draft: the explainer's time is the task's, whose limits allow one
        assert not QuestionExplanation.objects.exists()
        assert not MemoCard.objects.exists()
        sent = []
        monkeypatch.setattr(explain_question, "apply_async", lambda args, kwargs: sent.append(args))
        for callback in callbacks:
            callback()
        assert sent == [(question.id,)]

    def test_a_question_of_a_deleted_topic_is_not_explained(self, question):
        from study.services.topics import topic_delete

        topic_delete(topic=question.study_topic)
        assert question_explain(question_id=question.id) == "missing"
        assert not QuestionExplanation.objects.exists()
        assert not MemoCard.objects.exists()

    def test_text_the_database_cannot_store_is_cleaned(self, question, monkeypatch):
        from study.explain import Draft
        from study.services import explanations

        unstorable = Draft("정답\x00: 1번 \ud83d", "http")  # a NUL byte and a lone surrogate
        monkeypatch.setattr(explanations, "explanation_draft", lambda facts, passages, **options: unstorable)
        assert question_explain(question_id=question.id) == "created"
        assert QuestionExplanation.objects.get(question=question).text == "정답: 1번 \ufffd"

    @pytest.fixture
    def explained(self, question, settings):
        """The question answered wrong, explained, one of its two candidate cards approved."""
        from study.services.cards import card_approve
        from study.tests.factories import QuestionProgressFactory

        settings.CELERY_TASK_ALWAYS_EAGER = True
        QuestionProgressFactory(question=question, last_outcome="wrong")
        link_document(question.study_topic, LNG_NOTE)
        assert question_explain(question_id=question.id) == "created"
        approved, pending = MemoCard.objects.filter(source_question=question).order_by("format")
        card_approve(card=approved)
        return approved, pending

    def test_a_new_correct_choice_replaces_the_explanation_and_the_unreviewed_cards(
        self, question, explained, api_client, django_capture_on_commit_callbacks
    ):
        approved, pending = explained
        with django_capture_on_commit_callbacks(execute=True):
            response = api_client.patch(f"/api/study-questions/{question.id}", {"correct_choice": 3}, format="json")
        assert response.status_code == 200, response.content
        assert QuestionExplanation.objects.get(question=question).text.startswith("정답: 3번 프로판")
        pending.refresh_from_db()
        approved.refresh_from_db()
        assert pending.deleted_at is not None
        assert approved.deleted_at is None  # the user's: approved cards are kept
        fresh = MemoCard.objects.live().filter(source_question=question, needs_review=True)
        assert fresh.exists() and all("프로판" in card.fact for card in fresh)
        assert api_client.get(f"/api/study-questions/{question.id}").json()["ai_explanation"].startswith("정답: 3번")

    def test_other_choices_drop_the_explanation_and_a_known_question_is_not_explained_again(
        self, question, explained, django_capture_on_commit_callbacks
    ):
        from study.models import QuestionProgress
        from study.services.questions import question_update

        QuestionProgress.objects.filter(question=question).update(last_outcome="correct")
        with django_capture_on_commit_callbacks(execute=True):  # eager: an enqueued explanation would run here
            question_update(question=question, data={"choices": ["CH4", "에탄", "프로판", "부탄"]})
        assert not QuestionExplanation.objects.filter(question=question).exists()  # the learner got it right
        assert PublishOutbox.objects.filter(kind="study_card", source_id=explained[1].id).exists()

    def test_edits_that_keep_the_answer_key_keep_the_explanation(self, question, explained):
        from study.services.questions import question_update

        before = QuestionExplanation.objects.get(question=question)
        question_update(question=question, data={"question_text": "LNG의 주성분은?", "correct_choice": 1})
        assert QuestionExplanation.objects.get(question=question).pk == before.pk
        assert MemoCard.objects.live().filter(source_question=question).count() == 2


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("review", ["approve", "edit"])
def test_a_candidate_reviewed_while_the_answer_key_changes_is_kept(user, review):
    """A new answer key drops the candidates nobody approved yet. It read their ids, then deleted by id: a
    candidate approved (or edited, which approves) by a transaction committing in between was deleted too, the
    reviewer's or learner's work lost. The candidates are now locked before they are read."""
    from study.services.cards import card_update, cards_approve
    from study.services.questions import question_update
    from study.tests.factories import MemoCardFactory
    from studyserver.testing import while_holding

    question = QuestionFactory(study_topic=StudyTopicFactory(user=user), choices=["메탄", "에탄"], correct_choice=1)
    QuestionExplanation.objects.create(user_id=user.pk, question=question, text="정답: 1번 메탄", backend="extractive",
                                       passages=[])
    card = MemoCardFactory(user=user, source_question=question, source_kind="question", needs_review=True)
    untouched = MemoCardFactory(user=user, source_question=question, source_kind="question", needs_review=True)
    if review == "approve":
        def reviewed():
            assert cards_approve(card_ids=[card.pk]) == [card.pk]
    else:
        def reviewed():
            card_update(card=MemoCard.objects.get(pk=card.pk), fact="the learner's own fact")

    while_holding(reviewed, then=lambda: question_update(question=question, data={"correct_choice": 2}))

    card.refresh_from_db()
    assert (card.needs_review, card.deleted_at) == (False, None)
    if review == "edit":
        assert card.fact == "the learner's own fact"
    untouched.refresh_from_db()
    assert untouched.deleted_at is not None  # the candidate nobody reviewed still goes
    assert not QuestionExplanation.objects.filter(question=question).exists()


@pytest.mark.postgresql  # waits on PostgreSQL row locks
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["the wrong answer", "the new answer key"])
def test_a_wrong_answer_finalized_while_the_answer_key_changes_is_explained_again(user, settings, first):
    """Each side saw the other's state from before: finalize still saw the explanation (so explained nothing), the
    edit still saw the last answer correct (so explained nothing either), and the question stayed unexplained."""
    from study.services.questions import question_update
    from study.services.quizzes import quiz_attempt_record
    from study.tests.factories import QuestionProgressFactory, QuizSessionFactory
    from studyserver.testing import while_holding

    settings.CELERY_TASK_ALWAYS_EAGER = True  # an explanation enqueued after a commit is written there and then
    question = QuestionFactory(study_topic=StudyTopicFactory(user=user), choices=["메탄", "에탄", "프로판"],
                               correct_choice=1)
    QuestionExplanation.objects.create(user_id=user.pk, question=question, text="정답: 1번 메탄", backend="extractive",
                                       passages=[])
    QuestionProgressFactory(question=question, last_outcome="correct")
    session = QuizSessionFactory(study_topic=question.study_topic, question_ids=[question.id])

    def answer_wrong():
        quiz_attempt_record(user=user, quiz_session_id=session.id, question_id=question.id, selected_choice=2)

    def change_key():
        question_update(question=question, data={"correct_choice": 3})

    if first == "the wrong answer":
        while_holding(answer_wrong, then=change_key)
    else:
        while_holding(change_key, then=answer_wrong)

    assert QuestionExplanation.objects.get(question=question).text.startswith("정답: 3번 프로판")


def test_the_extractive_explanation_quotes_a_passage_whole():
    """Passages are up to 600 characters and quotes were cut at 400: a paragraph of 489 lost its last sentence, the
    one with the answer, cut mid-word."""
    from study.explain.base import Passage, QuestionFacts
    from study.explain.extractive import extractive_explain
    from study.explain.retrieval import PASSAGE_MAX_CHARS

    filler = "수송과 저장이 쉽도록 냉각하여 부피를 줄인 가스이며 " * 16
    paragraph = f"LNG는 액화천연가스로 {filler}비점은 -162℃이다."
    assert 400 < len(paragraph) <= PASSAGE_MAX_CHARS
    facts = QuestionFacts(question_id=1, topic_id=1, user_id=1, subject="가스", question_text="LNG의 비점은?",
                          choices=("-162℃", "-42℃"), correct_choice=1)
    draft = extractive_explain(facts, [Passage(document_id=1, title="노트", snippet=paragraph, rank=1.0)])
    assert f'- "{paragraph}" — 노트' in draft.text.splitlines()
