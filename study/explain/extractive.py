"""The default explainer: states the correct answer and quotes the best-matching passages."""

from .base import Draft, Passage, QuestionFacts
from .retrieval import PASSAGE_MAX_CHARS

BACKEND = "extractive"
QUOTE_MAX_CHARS = PASSAGE_MAX_CHARS  # a passage is quoted whole: cut at 400, one lost the sentence with the answer


def _quote(passage: Passage) -> str:
    snippet = passage.snippet if len(passage.snippet) <= QUOTE_MAX_CHARS else passage.snippet[:QUOTE_MAX_CHARS] + "…"
    return f'- "{snippet}" — {passage.title}'


def extractive_explain(facts: QuestionFacts, passages: list[Passage]) -> Draft:
    lines = [f"정답: {facts.correct_choice}번 {facts.answer_text}".rstrip()]
    if facts.explanation.strip():
        lines += ["", f"해설: {facts.explanation.strip()}"]
    lines += ["", "관련 자료:"]
    if passages:
        lines += [_quote(p) for p in passages]
    else:
        lines.append("- 이 주제의 문서에서 관련 문단을 찾지 못했습니다.")
    return Draft(text="\n".join(lines), backend=BACKEND)
