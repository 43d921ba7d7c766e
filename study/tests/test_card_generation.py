"""Card candidates from explained questions: Q&A + cloze, evidence, dedup on reruns and races."""


import unicodedata

import pytest

from study.models import CardEvidence, MemoCard, QuestionExplanation
from study.services.card_generation import cloze_from_passage, question_cards_generate
from study.tests.factories import MemoCardFactory, QuestionFactory
from study.textnorm import card_dedup_hash
from studyserver.testing import run_concurrently

PASSAGE = "액화천연가스는 냉각해 보관한다. LNG의 주성분은 메탄이며, 메탄은 공기보다 가볍다."


def explained(question, passages):
    return QuestionExplanation.objects.create(
        user=question.user, question=question, text="정답: 1번 메탄", passages=passages
    )


@pytest.fixture
def question(user):
    return QuestionFactory(
        study_topic__user=user, question_text="LNG의 주성분은?", choices=["메탄", "에탄"], correct_choice=1
    )


class TestCloze:
    def test_blanks_every_occurrence_in_the_sentence_with_the_answer(self):
        assert cloze_from_passage(PASSAGE, "메탄") == "LNG의 주성분은 ____이며, ____은 공기보다 가볍다."

    def test_case_insensitive_and_absent(self):
        assert cloze_from_passage("Methane is the main part. LNG is METHANE.", "methane") == "____ is the main part."
        assert cloze_from_passage("LNG is cold.", "methane") == ""

    def test_too_short_answer_gives_no_cloze(self):
        assert cloze_from_passage("물은 H2O이다.", "물") == ""

    def test_occurrences_that_overlap_are_blanked_once(self):
        assert cloze_from_passage("ははは笑った。", "はは") == "____は笑った。"  # (Japanese: found inside words)
        assert cloze_from_passage("하하하 웃었다.", "하하") == ""  # (Korean: 하하 is no word of 하하하)

    def test_a_sentence_whose_folding_changes_its_length_is_blanked_in_the_right_place(self):
        """NFKC turns ㎏ into kg and ℃ into °c: such sentences had been given up (no cloze, or one from a worse
        sentence), and ℃, ㎏ and ㎫ are everywhere in gas-safety notes."""
        assert cloze_from_passage("LNG 1㎏의 주성분은 메탄이다.", "메탄") == "LNG 1㎏의 주성분은 ____이다."
        assert (cloze_from_passage("LNG는 -162℃까지 냉각하며 주성분은 메탄(CH4)이다.", "메탄")
                == "LNG는 -162℃까지 냉각하며 주성분은 ____(CH4)이다.")
        assert cloze_from_passage("충전 압력은 2.5㎫이다.", "2.5㎫") == "충전 압력은 ____이다."
        assert cloze_from_passage("충전 압력은 2.5㎫이다.", "2.5MPa") == "충전 압력은 ____이다."  # typed out
        assert cloze_from_passage("비점은 -162℃이다.", "-162°C") == "비점은 ____이다."

    def test_japanese_sentences_end_at_their_mark_without_a_space(self):
        """Japanese puts no space after 。: the whole passage was one sentence, and a cloze of it had several blanks
        or none of the point."""
        assert cloze_from_passage("NATはアドレスを変換する。DNSは名前を引く。", "名前を引く") == "DNSは____。"
        # a mark that ends a quotation does not end the sentence around it
        assert (cloze_from_passage("「行かざるを得ない」は「行くしかない」という意味。次の文。", "行くしかない")
                == "「行かざるを得ない」は「____」という意味。")

    def test_a_decomposed_passage_is_blanked(self):
        """A note written on macOS (NFD): its folded text was longer than it, and it gave no cloze."""
        passage = unicodedata.normalize("NFD", "TBM은 양파 썩는 냄새가 난다.")
        assert cloze_from_passage(passage, "양파 썩는 냄새") == "TBM은 ____가 난다."

    def test_a_latin_word_or_a_number_is_not_blanked_inside_a_longer_one(self):
        assert cloze_from_passage("LNG contains CO2 but no CO.", "CO") == "LNG contains CO2 but no ____."
        assert cloze_from_passage("The other gas is heavier. He is light.", "he") == "____ is light."
        assert cloze_from_passage("압력은 12.5이고 기준은 2.5이다.", "2.5") == "압력은 12.5이고 기준은 ____이다."
        assert cloze_from_passage("용량 1,100L 중 100L.", "100L") == "용량 1,100L 중 ____."
        assert cloze_from_passage("온도는 10.5도, 10도.", "10") == "온도는 10.5도, ____도."
        assert cloze_from_passage("Ethane burns.", "ethan") == ""
        # Korean attaches particles to the word: still found inside the longer run of letters
        assert cloze_from_passage("주성분은 메탄이다.", "메탄") == "주성분은 ____이다."
        assert cloze_from_passage("주성분은 CH4이다.", "CH4") == "주성분은 ____이다."

    def test_a_korean_answer_is_not_blanked_inside_a_longer_word(self):
        """메탄 is not 메탄올 (methanol), 탄소 not 일산화탄소, 수소 not 탄화수소: the cloze blanked part of another
        word in the first sentence that held the letters, and asked the wrong thing."""
        assert (cloze_from_passage("메탄올은 독성이 있다. LNG의 주성분은 메탄이다.", "메탄")
                == "LNG의 주성분은 ____이다.")
        assert cloze_from_passage("일산화탄소는 독성가스이다. 탄소는 가연성이다.", "탄소") == "____는 가연성이다."
        assert (cloze_from_passage("LNG는 탄화수소 혼합물이다. 수소는 가장 가벼운 가스이다.", "수소")
                == "____는 가장 가벼운 가스이다.")
        assert cloze_from_passage("주성분은 메탄으로서 가볍다.", "메탄") == "주성분은 ____으로서 가볍다."

    def test_a_number_answer_is_blanked_before_its_unit(self):
        """The unit is in the question ("몇 ppm인가?"): 25ppm and 2.5㎫ held no whole 25 or 2.5, and no cloze was
        made; a formula is still no number (H2 is not in H2O)."""
        assert cloze_from_passage("암모니아의 허용농도는 25ppm이다.", "25") == "암모니아의 허용농도는 ____ppm이다."
        assert cloze_from_passage("충전 압력은 2.5㎫이다.", "2.5") == "충전 압력은 ____㎫이다."
        assert cloze_from_passage("물은 H2O이다.", "H2") == ""
        assert cloze_from_passage("허용농도는 250ppm이다.", "25") == ""

    def test_an_abbreviation_does_not_end_the_sentence(self):
        assert (cloze_from_passage("Amazon S3, e.g. for backups, stores objects durably.", "S3")
                == "Amazon ____, e.g. for backups, stores objects durably.")
        assert (cloze_from_passage("EC2 instances, i.e. virtual servers, run in a VPC.", "VPC")
                == "EC2 instances, i.e. virtual servers, run in a ____.")

    def test_a_sentence_that_is_the_answer_alone_is_no_cloze(self):
        """A list item is a passage of its own: "- 메탄" made the card "- ____", which asks nothing."""
        assert cloze_from_passage("- 메탄", "메탄") == ""
        assert cloze_from_passage("2) **Methane**", "methane") == ""
        assert cloze_from_passage("메탄! LNG의 주성분은 메탄이다.", "메탄") == "LNG의 주성분은 ____이다."


@pytest.mark.django_db
class TestQuestionCards:
    def test_qa_and_cloze_candidates_with_evidence(self, question):
        explanation = explained(question, [
            {"document_id": 41, "title": "노트", "snippet": "LNG는 차갑다.", "rank": 0.5},
            {"document_id": 42, "title": "노트", "snippet": PASSAGE, "rank": 0.3},
        ])
        cards = question_cards_generate(question=question, explanation=explanation)
        qa, cloze = cards
        assert (qa.format, qa.cue, qa.fact, qa.cloze_text) == ("qa", "LNG의 주성분은?", "메탄", "")
        assert (cloze.format, cloze.fact) == ("cloze", "메탄")
        assert cloze.cloze_text == "LNG의 주성분은 ____이며, ____은 공기보다 가볍다."
        for card in cards:
            card.refresh_from_db()
            assert card.needs_review is True
            assert card.source_kind == "question"
            assert card.source_question_id == question.id
            assert card.study_topic_id == question.study_topic_id
            assert card.user_id == question.user_id
            assert card.dedup_hash == card_dedup_hash(source_question_id=question.id, card_format=card.format,
                                                      fact="메탄")
        qa_evidence = list(CardEvidence.objects.filter(card=qa).values_list("source_type", "source_id", "snippet"))
        assert qa_evidence == [
            ("question", question.id, "LNG의 주성분은?"),
            ("explanation", explanation.id, "정답: 1번 메탄"),
            ("document", 41, "LNG는 차갑다."),
            ("document", 42, PASSAGE),
        ]
        cloze_sources = list(CardEvidence.objects.filter(card=cloze).values_list("source_type", "source_id"))
        assert cloze_sources == [("question", question.id), ("explanation", explanation.id), ("document", 42)]

    def test_rerun_creates_no_duplicates(self, question):
        explanation = explained(question, [{"document_id": 1, "snippet": PASSAGE, "rank": 1}])
        assert len(question_cards_generate(question=question, explanation=explanation)) == 2
        assert question_cards_generate(question=question, explanation=explanation) == []
        assert MemoCard.objects.filter(source_question=question).count() == 2
        assert CardEvidence.objects.count() == 3 + 3

    def test_live_duplicate_blocks_but_deleted_one_does_not(self, question):
        hash_qa = card_dedup_hash(source_question_id=question.id, card_format="qa", fact=" 메탄!")
        MemoCardFactory(user=question.user, source_question=question, fact="메탄", dedup_hash=hash_qa)
        explanation = explained(question, [])
        assert question_cards_generate(question=question, explanation=explanation) == []
        MemoCard.objects.update(deleted_at=question.created_at)
        assert [c.format for c in question_cards_generate(question=question, explanation=explanation)] == ["qa"]

    def test_question_without_answer_text_makes_no_cards(self, question):
        question.correct_choice = 9
        assert question_cards_generate(question=question, explanation=explained(question, [])) == []

    def test_long_passages_are_cut_in_the_evidence(self, question):
        long_passage = "메탄은 가볍다. " * 100
        explanation = explained(question, [{"document_id": 7, "snippet": long_passage, "rank": 1}])
        qa, _cloze = question_cards_generate(question=question, explanation=explanation)
        snippet = CardEvidence.objects.get(card=qa, source_type="document").snippet
        assert snippet == long_passage[:600] + "…"  # (a passage is at most 600 characters: cited whole)


@pytest.mark.django_db(transaction=True)
def test_concurrent_generation_makes_each_card_once(user):
    question = QuestionFactory(study_topic__user=user, choices=["메탄", "에탄"], correct_choice=1)
    explanation = explained(question, [{"document_id": 1, "snippet": PASSAGE, "rank": 1}])
    made = run_concurrently(
        *(lambda: len(question_cards_generate(question=question, explanation=explanation)) for _ in range(2))
    )
    assert sum(made) == 2
    assert sorted(MemoCard.objects.filter(source_question=question).values_list("format", flat=True)) == ["cloze", "qa"]
