"""Fact normalisation and the card dedup hash."""

import pytest

from study.textnorm import card_dedup_hash, normalize_fact


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Methane", "methane"),
        ("ＭＥＴＨＡＮＥ", "methane"),  # NFKC: full-width letters
        ("Straße", "strasse"),  # case-fold, not just lower()
        ("  영하   162 도\n\t ", "영하 162 도"),  # whitespace collapsed and trimmed
        ("「메탄」。", "메탄"),  # CJK punctuation at the ends
        ("...메탄, 에탄!!", "메탄, 에탄"),  # punctuation inside is kept
        ("(CH4)", "ch4"),
        ("㎏", "kg"),  # NFKC compatibility character
        ("", ""),
        (None, ""),
        ("?!.", ""),
        # invisible characters (pasted along, unseen): a fact with them was another card
        ("영하 162도\u200b", "영하 162도"),  # zero-width space
        ("\ufeff영하\u200b 162도", "영하 162도"),  # BOM, zero-width space inside
        ("영하 \u200b 162도", "영하 162도"),  # dropped before the spaces are collapsed: one space, not two
        ("영하 16\u00ad2도\u2060", "영하 162도"),  # soft hyphen, word joiner
        ("\u200e메탄\u200f", "메탄"),  # direction marks
        ("영하\u3164162도", "영하 162도"),  # the Hangul filler used as a space
        ("영하\uffa0\u3164162도", "영하 162도"),
        ("\u3164메탄\u3164", "메탄"),
        # punctuation that belongs to a number stays: a sign, a decimal point, a per cent sign
        ("-40", "-40"),
        ("(-40)", "-40"),
        ("－５ °C.", "-5 °c"),  # full-width minus (NFKC: "-")
        (".5", ".5"),
        ("-.5", "-.5"),
        ("(-.5)", "-.5"),
        ("10%", "10%"),
        ("「10％」", "10%"),
        ("5′", "5′"),
        ("- 메탄", "메탄"),  # a dash before a word is a list mark
        ("...메탄.", "메탄"),
    ],
)
def test_normalize_fact(raw, expected):
    assert normalize_fact(raw) == expected


def test_hash_ignores_formatting_but_not_meaning():
    base = card_dedup_hash(source_question_id=7, card_format="qa", fact="영하 162도")
    assert card_dedup_hash(source_question_id=7, card_format="qa", fact=" 영하  162도. ") == base
    assert card_dedup_hash(source_question_id=7, card_format="qa", fact="영하 161도") != base
    for one, other in (("-40", "40"), ("-5 °C", "5 °C"), (".5", "5"), ("-.5", ".5"), ("10%", "10")):
        assert (card_dedup_hash(source_question_id=7, card_format="qa", fact=one)
                != card_dedup_hash(source_question_id=7, card_format="qa", fact=other)), one
    assert card_dedup_hash(source_question_id=7, card_format="cloze", fact="영하 162도") != base
    assert card_dedup_hash(source_question_id=8, card_format="qa", fact="영하 162도") != base
    assert card_dedup_hash(source_question_id=None, card_format="qa", fact="영하 162도") != base
    assert len(base) == 64
