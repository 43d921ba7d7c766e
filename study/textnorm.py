"""Text normalisation: names and texts as stored (NFC), card facts and the card dedup hash (one implementation
for API, admin and tasks)."""

import hashlib
import re
import unicodedata

_SPACES = re.compile(r"\s+")
# Invisible characters a pasted fact may carry, which no reader can tell apart: format characters (category Cf:
# zero-width space, BOM, word joiner, soft hyphen, direction marks) are dropped, and the Hangul fillers (blank
# characters, used for spaces: NFKC makes U+3164 and U+FFA0 U+1160) read as spaces.
_HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
_HANGUL_FILLERS_AS_SPACES = str.maketrans(dict.fromkeys(_HANGUL_FILLERS, " "))


def is_blank(text: str) -> bool:
    """Nothing a reader sees: only whitespace and invisible characters (format characters such as a zero-width
    space or a BOM, the Hangul fillers)."""
    return all(ch.isspace() or ch in _HANGUL_FILLERS or unicodedata.category(ch) == "Cf" for ch in text)


def nfc(text: str) -> str:
    """The composed (NFC) form that names, titles, tags and question texts are stored and searched in: the same
    Korean syllable typed (NFC) or taken from a macOS file name (NFD) is one string."""
    return unicodedata.normalize("NFC", text)


def subject_label(text: str) -> str:
    """How a question's subject is stored and matched: NFC, its invisible characters (format characters: a
    zero-width space, a BOM) dropped, each run of white space (a no-break or ideographic space, a tab) one space,
    none at the ends. "Gas\u00a0Safety", "Gas  Safety" and "Gas Safety\u200b" looked alike and were three subjects: a
    quiz took its questions per subject from each, and a subject filter missed two. Never longer than its NFC form."""
    visible = "".join(ch for ch in unicodedata.normalize("NFC", text) if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split())


def spellings(text: str) -> tuple[str, ...]:
    """A search term as typed, composed (NFC) and decomposed (NFD), each once: what a search over texts stored NFC
    (names, question texts) and texts stored as sent (a card's cue from a macOS app: NFD) looks for."""
    return tuple(dict.fromkeys((text, nfc(text), unicodedata.normalize("NFD", text))))


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


# Punctuation that is part of a number, which the ends are not stripped of: a sign or decimal point before a digit
# (-40 is not 40, .5 is not 5) and a per cent or per mille sign, or primes (minutes, feet), at the end (10% is not 10).
_NUMBER_START = re.compile(r"-?\.?\d")
_MEASURES = "%‰‱′″‴"


def normalize_fact(text: str) -> str:
    """NFKC, case-folded, invisible characters dropped (or read as spaces), whitespace collapsed, punctuation
    stripped at both ends, except where it belongs to a number (a sign, a decimal point, a per cent sign)."""
    value = unicodedata.normalize("NFKC", text or "").casefold().translate(_HANGUL_FILLERS_AS_SPACES)
    value = "".join(ch for ch in value if unicodedata.category(ch) != "Cf")
    value = _SPACES.sub(" ", value).strip()
    start, end = 0, len(value)
    while start < end and (_is_punct(value[start]) or value[start].isspace()):
        if _NUMBER_START.match(value, start, end):
            break
        start += 1
    while end > start and (_is_punct(value[end - 1]) or value[end - 1].isspace()) and value[end - 1] not in _MEASURES:
        end -= 1
    return value[start:end]


def card_dedup_hash(*, source_question_id: int | None, card_format: str, fact: str) -> str:
    """sha256 of (source question, format, normalised fact)."""
    key = f"{source_question_id or ''}\x1f{card_format}\x1f{normalize_fact(fact)}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _in_a_word(char: str) -> bool:
    """True for the letters and digits a Latin-script word or a number is made of; Hangul, kana and Han attach
    particles and endings to a word (메탄은, 名前を): see _hangul_bounds for Hangul."""
    if not char.isalnum():
        return False
    code = ord(char)
    return not (
        0x1100 <= code <= 0x11FF or 0x3040 <= code <= 0x30FF or 0x3130 <= code <= 0x318F
        or 0x3400 <= code <= 0x4DBF or 0x4E00 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF
    )


def _is_hangul(char: str) -> bool:
    return "\uac00" <= char <= "\ud7a3"


# Korean particles and copulas glued to nouns ("메탄이다", "주성분은"): retrieval strips them so stems match.
KOREAN_PARTICLES = tuple(sorted(
    ["에서는", "으로는", "에게서", "이라고", "에서", "으로", "에게", "까지", "부터", "보다", "처럼", "이다", "이며",
     "입니다", "은", "는", "이", "가", "을", "를", "의", "에", "와", "과", "도", "로", "만"],
    key=len, reverse=True,
))
# What may follow a Korean noun in the same word: those, and more endings of the copula and particles ("메탄으로서",
# "메탄인"). Any other syllable makes a longer word: 메탄 is not in 메탄올 (methanol).
_AFTER_A_KOREAN_WORD = tuple(sorted(
    {*KOREAN_PARTICLES, "으로서", "으로써", "이라는", "이어서", "이라", "이고", "이나", "이면", "이란", "마다", "조차",
     "밖에", "과는", "와는", "라고", "라는", "인", "임", "요", "나", "랑", "며", "란", "다"},
    key=len, reverse=True,
))


def _stands_alone(text: str, start: int, end: int, needle: str) -> bool:
    """Whether text[start:end] is a whole word or number of `text`, not part of a longer one: "he" in "the", "5"
    in "2.5", "10" in "1,100" or "100"; 탄소 in 일산화탄소, 메탄 in 메탄올 (a Korean word may carry a particle:
    메탄이다). A number may have its unit right after it (25ppm, 2.5㎫)."""
    first, last = text[start], text[end - 1]
    if start > 0:
        before = text[start - 1]
        if _in_a_word(first) and (_in_a_word(before) or (
                first.isdigit() and before in ".," and start > 1 and text[start - 2].isdigit())):
            return False
        if _is_hangul(first) and _is_hangul(before):
            return False
    if end < len(text):
        after = text[end]
        numeric = all(char.isdigit() or char in ".,-" for char in needle)
        if _in_a_word(last) and (after.isdigit() if numeric else _in_a_word(after)):
            return False
        if last.isdigit() and after in ".," and end + 1 < len(text) and text[end + 1].isdigit():
            return False
        if _is_hangul(last) and _is_hangul(after) and not text.startswith(_AFTER_A_KOREAN_WORD, end):
            return False
    return True


def whole_occurrences(haystack: str, needle: str) -> list[int]:
    """Where `needle` starts in `haystack` (both folded alike by the caller), not overlapping, and where it is a
    word of its own (_stands_alone): the answer "CO" is no occurrence in "contains", "10" none in "1,100", 메탄 none
    in 메탄올. Japanese is found inside longer runs of letters, which carry its particles without a space."""
    found, start = [], 0
    if not needle:
        return found
    while (index := haystack.find(needle, start)) >= 0:
        end = index + len(needle)
        if _stands_alone(haystack, index, end, needle):
            found.append(index)
            start = end
        else:
            start = index + 1
    return found
