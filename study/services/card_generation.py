"""Card candidates made from an explained question: a Q&A card and, when a passage holds the answer, a cloze card.

Cards are written through study.services.cards.card_candidate_create (dedup in the database).
Cloze convention: `cloze_text` is the passage sentence with every occurrence of the answer
replaced by "____" (the answer itself is the card's `fact`). Candidates start with
needs_review=true; dedup_hash (source question, format, normalised fact) makes reruns no-ops.
"""

import logging
import unicodedata

from study.explain.retrieval import BLOCK_START, PASSAGE_MAX_CHARS, SENTENCE_END
from study.models import MemoCard, Question, QuestionExplanation
from study.models.cards import CardFormat, EvidenceSource
from study.services.cards import card_candidate_create
from study.textnorm import normalize_fact, whole_occurrences

logger = logging.getLogger(__name__)

CLOZE_BLANK = "____"
SNIPPET_MAX_CHARS = PASSAGE_MAX_CHARS  # a passage is cited whole as the evidence


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET_MAX_CHARS else text[:SNIPPET_MAX_CHARS] + "…"


def _evidence(source_type: str, source_id: int | None, text: str) -> dict:
    return {"source_type": source_type, "source_id": source_id, "snippet": _snippet(text)}


def _folded(text: str) -> tuple[str, list[int]]:
    """`text` NFKC-folded character by character, and for each folded character the index of the one it came from:
    ℃ folds to two (°c), ㎫ to three (mpa)."""
    folded, origin = [], []
    for index, char in enumerate(text):
        piece = unicodedata.normalize("NFKC", char).casefold()
        folded.append(piece)
        origin += [index] * len(piece)
    return "".join(folded), origin


def _find_all(haystack: str, needle: str) -> list[tuple[int, int]]:
    """Spans of `needle` in `haystack` (NFC), case-insensitively and NFKC-folded: 2.5㎫ is found as typed 2.5MPa, and
    a sentence with ℃ in it is searched too (its folded text was longer, and was given up). A Latin word or a number
    is found whole only: the answer "CO" blanked "____ntains" in "LNG contains CO", and "10" blanked "1____0"."""
    folded_hay, origin = _folded(haystack)
    folded_needle = unicodedata.normalize("NFKC", needle).casefold()
    return [(origin[index], origin[index + len(folded_needle) - 1] + 1)
            for index in whole_occurrences(folded_hay, folded_needle)]


def cloze_from_passage(passage: str, answer: str) -> str:
    """The first sentence of `passage` that contains `answer` and something besides it, with the answer blanked;
    "" when none does."""
    if len(normalize_fact(answer)) < 2:
        return ""  # one-character answers would blank half the text
    for sentence in SENTENCE_END.split(unicodedata.normalize("NFC", passage)):
        spans = _find_all(sentence, answer.strip())
        if not spans:
            continue
        parts, last = [], 0
        for begin, end in spans:
            parts += [sentence[last:begin], CLOZE_BLANK]
            last = end
        parts.append(sentence[last:])
        cloze = "".join(parts).strip()
        if any(char.isalnum() for char in BLOCK_START.sub("", cloze, count=1).replace(CLOZE_BLANK, "")):
            return cloze
        # a list item that is the answer alone ("- 메탄", "2) 메탄") asks nothing: look on
    return ""


def question_cards_generate(*, question: Question, explanation: QuestionExplanation) -> list[MemoCard]:
    """Make the Q&A and cloze candidates of an explained question; returns the cards created now."""
    index = question.correct_choice - 1
    choices = question.choices if isinstance(question.choices, list) else []
    answer = str(choices[index]).strip() if 0 <= index < len(choices) else ""
    if not answer:
        logger.warning("question %s has no correct choice text: no cards", question.id)
        return []
    base_evidence = [
        _evidence(EvidenceSource.QUESTION, question.id, question.question_text),
        _evidence(EvidenceSource.EXPLANATION, explanation.id, explanation.text),
    ]
    passages = [p for p in (explanation.passages or []) if isinstance(p, dict) and p.get("snippet")]
    passage_evidence = [_evidence(EvidenceSource.DOCUMENT, p.get("document_id"), p["snippet"]) for p in passages]
    created = []
    qa = card_candidate_create(
        question=question, card_format=CardFormat.QA, cue=question.question_text, fact=answer,
        evidence=base_evidence + passage_evidence,
    )
    if qa:
        created.append(qa)
    # One cloze per question (dedup_hash is per question, format and fact): from the best passage that has the answer.
    cloze = next(((p, text) for p in passages if (text := cloze_from_passage(p["snippet"], answer))), None)
    if cloze:
        passage, cloze_text = cloze
        card = card_candidate_create(
            question=question, card_format=CardFormat.CLOZE, cue=question.question_text, fact=answer,
            cloze_text=cloze_text,
            evidence=[
                *base_evidence,
                _evidence(EvidenceSource.DOCUMENT, passage.get("document_id"), passage["snippet"]),
            ],
        )
        if card:
            created.append(card)
    logger.info("question %s: %d card candidate(s) created", question.id, len(created))
    return created
