"""Find the passages of a topic's documents that best match a question and its correct answer.

PostgreSQL: documents are filtered and ranked with full-text search (the `simple` config, the
expression of the GIN index study_document_text_gin_idx; a document's rank is divided by the log of its length,
so that long documents that mention the terms often do not crowd the short notes out of the few read), then their
passages are ranked with ts_rank in one query. Elsewhere (the SQLite demo), for Japanese (written without spaces:
the `simple` parser reads a whole clause as one word, so only a clause copied word for word matched), and when
full-text search finds nothing, passages are ranked by token overlap; Japanese is cut into runs of kanji, of
katakana and of Latin letters for it. Passages that contain the answer text are boosted ×2, and a passage ranked
below 0.3 of the best is left out (one shared common word is no evidence).
"""

import heapq
import re
import unicodedata

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Value

from study.models import Document
from study.models.documents import ExtractStatus
from study.textnorm import KOREAN_PARTICLES, whole_occurrences

from .base import Passage, QuestionFacts

MAX_DOCUMENTS = 5
MAX_CANDIDATE_PASSAGES = 2000
PASSAGE_TARGET_CHARS = 300
PASSAGE_MAX_CHARS = 600
ANSWER_BOOST = 2.0
RELATIVE_MIN_RANK = 0.3  # of the best passage's rank

_WORD = re.compile(r"[^\W_]+")
# After . ! ? and a space; after Japanese 。！？ also without one (Japanese puts none), but not inside a quotation
# or a bracket that the mark ends (「…。」).
# An abbreviation's period ends no sentence ("Amazon S3, e.g. for backups, …" was cut after "e.g.").
SENTENCE_END = re.compile(
    r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bvs\.)(?<!\bcf\.)(?<!\bNo\.)(?<!\bFig\.)(?<!\bapprox\.)"
    r"(?<=[.!?])\s+|(?<=[。！？])(?![」』）)\]])\s*"
)
# A line that starts a passage of its own: a list item, a heading, a table row (a whole table as one passage made
# one cloze of it, blanking the answer in every row). A bullet or a list number has a space after it: a PDF line
# wrapped before "1.5배" or "-162℃" goes on with its sentence. Korean notes number their lists ①, (1), 가. and Ⅰ.
BLOCK_START = re.compile(
    r"^\s*(?:[-*+•](?=\s)|[#|]|\d+[.)](?=\s)|\(\d+\)(?=\s)|[\u2460-\u2473\u2776-\u277f]"
    r"|[가나다라마바사아자차카타파하][.)](?=\s)|[\u2160-\u216b]\.?(?=\s))\s*"
)
# Kana and kanji, which Japanese writes without spaces: a line wrapped between two of them is joined without one.
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\u3005\u3001\u3002\uff08\uff09]")
# A Markdown heading: a passage of it alone says nothing a reviewer can check (it was cited as the evidence, `#`
# and all), so it is none; followed by its text on the next lines, it is read as that text's first words.
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_HANGUL_END = re.compile(r"[\uac00-\ud7a3]$")
_JAPANESE = re.compile(r"[\u3040-\u30ff]")  # kana: a word with kana in it is Japanese (kanji alone may be hanja)
# The parts of a Japanese word that carry meaning: runs of kanji, of katakana, of Latin letters and digits (the
# hiragana between them are particles and inflections).
_JAPANESE_RUNS = re.compile(r"[\u4e00-\u9fff\u3005]+|[\u30a0-\u30ff]+|[a-z0-9]+")
_STOPWORDS = frozenset(
    [
        "다음", "중", "것은", "것", "옳은", "옳지", "않은", "틀린", "맞는", "무엇인가", "무엇", "가장", "해당",
        "설명", "설명으로", "어느", "있는", "하는", "대한", "관한",
        "the", "is", "are", "of", "which", "what", "a", "an", "and", "or", "to", "in", "for", "on", "by", "with",
        "following", "not",
        "説明", "適切", "記述", "組合", "該当", "次", "何", "意味", "正",
    ]
)


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").casefold()


def _stem(token: str) -> str:
    if _HANGUL_END.search(token):
        for particle in KOREAN_PARTICLES:
            if token.endswith(particle) and len(token) - len(particle) >= 2:
                return token[: -len(particle)]
    return token


def _words(text: str) -> list[str]:
    """The words of `text`: a Japanese one cut into its runs of kanji, katakana and Latin letters (a phrase of kana
    only, a grammar point such as ざるを得ない, stays whole)."""
    words = []
    for token in _WORD.findall(_normalize(text)):
        if _JAPANESE.search(token):
            runs = [run for run in _JAPANESE_RUNS.findall(token) if len(run) >= 2]
            words += [run for run in runs if run not in _STOPWORDS] if runs else [token]
        else:
            words.append(token)
    return words


def query_terms(*texts: str) -> list[str]:
    """Distinct stems (≥2 characters, no stopwords) of the given texts, in order of appearance."""
    terms: dict[str, None] = {}
    for text in texts:
        for token in _words(text):
            if token in _STOPWORDS:
                continue
            stem = _stem(token)
            if len(stem) >= 2 and stem not in _STOPWORDS:
                terms[stem] = None
    return list(terms)


def _tsquery(terms: list[str]) -> str:
    # Terms hold only letters and digits (see _WORD), so the raw tsquery syntax is safe.
    return " | ".join(f"{term}:*" for term in terms)


def _joined_lines(lines: list[str]) -> str:
    """The lines of a paragraph as one text: with a space between them, none between two Japanese characters (完
    and 全性 of a wrapped PDF line are 完全性)."""
    text = ""
    for line in lines:
        if text and line and not (_CJK_CHAR.match(text[-1]) and _CJK_CHAR.match(line[0])):
            text += " "
        text += line
    return text


def split_passages(text: str) -> list[str]:
    """Paragraphs (blank lines, list items, headings); long ones cut at sentence ends into ~300 characters. A
    Markdown heading on its own is no passage."""
    blocks: list[list[str]] = [[]]
    headings: list[bool] = [True]  # whether each block holds headings only
    for line in (text or "").split("\n"):
        if not line.strip():
            blocks.append([])
            headings.append(True)
            continue
        if BLOCK_START.match(line) and blocks[-1]:
            blocks.append([])
            headings.append(True)
        heading = _HEADING.match(line)
        headings[-1] = headings[-1] and bool(heading)
        blocks[-1].append((line[heading.end():] if heading else line).strip())
    passages: list[str] = []
    for block, only_headings in zip(blocks, headings, strict=True):
        paragraph = _joined_lines(block).strip()
        if not paragraph or only_headings:
            continue
        if len(paragraph) <= PASSAGE_MAX_CHARS:
            passages.append(paragraph)
            continue
        current = ""
        for sentence in SENTENCE_END.split(paragraph):
            if current and len(current) + len(sentence) + 1 > PASSAGE_TARGET_CHARS:
                passages.append(current)
                current = ""
            current = f"{current} {sentence}".strip()
            while len(current) > PASSAGE_MAX_CHARS:  # one endless "sentence" (OCR, tables): cut between words
                cut = current.rfind(" ", PASSAGE_MAX_CHARS // 2, PASSAGE_MAX_CHARS + 1)
                cut = cut if cut > 0 else PASSAGE_MAX_CHARS  # (no space: a text without any, such as Japanese)
                passages.append(current[:cut].rstrip())
                current = current[cut:].lstrip()
        if current:
            passages.append(current)
    return passages


def _topic_documents(facts: QuestionFacts):
    return Document.objects.filter(
        topic_links__topic_id=facts.topic_id,
        user_id=facts.user_id,
        deleted_at__isnull=True,
        extract_status=ExtractStatus.DONE,
    ).exclude(extracted_text="")


def _documents_by_fulltext(facts: QuestionFacts, terms: list[str]) -> list[dict]:
    vector = SearchVector("extracted_text", config="simple")
    query = SearchQuery(_tsquery(terms), search_type="raw", config="simple")
    return list(
        _topic_documents(facts)
        .annotate(search=vector)
        .filter(search=query)
        .annotate(rank=SearchRank(vector, query, normalization=Value(1)))  # ÷ (1 + log(length))
        .order_by("-rank", "id")
        .values("id", "title", "extracted_text")[:MAX_DOCUMENTS]
    )


def _candidates(documents: list[dict], terms: list[str]) -> list[tuple[int, str, str]]:
    """(document id, title, passage) for passages that mention at least one term (cheap prefilter), in document
    and text order: at most MAX_CANDIDATE_PASSAGES, those that hold the most terms (the first ones taken, a
    textbook read first with one common term in thousands of passages filled the list, and the note after it
    that held every term and the answer was never ranked)."""
    best: list[tuple[int, int, tuple[int, str, str]]] = []  # a heap of (terms held, -order, candidate)
    order = 0
    for doc in documents:
        for passage in split_passages(doc["extracted_text"]):
            lowered = _normalize(passage)
            held = sum(1 for term in terms if term in lowered)
            if not held:
                continue
            order += 1
            entry = (held, -order, (doc["id"], doc["title"], passage))
            if len(best) < MAX_CANDIDATE_PASSAGES:
                heapq.heappush(best, entry)
            elif entry[:2] > best[0][:2]:
                heapq.heapreplace(best, entry)
    return [candidate for _held, _order, candidate in sorted(best, key=lambda entry: -entry[1])]


def _rank_fulltext(candidates: list[tuple[int, str, str]], terms: list[str]) -> list[float]:
    """ts_rank of every candidate passage against the OR-ed terms, in one query (0 when it does not match)."""
    sql = (
        "SELECT CASE WHEN to_tsvector('simple', t.p) @@ q THEN ts_rank(to_tsvector('simple', t.p), q) ELSE 0 END "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS t(p, ord), to_tsquery('simple', %s) AS q ORDER BY t.ord"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[c[2] for c in candidates], _tsquery(terms)])
        return [float(row[0]) for row in cursor.fetchall()]


def _rank_overlap(candidates: list[tuple[int, str, str]], terms: list[str]) -> list[float]:
    """Share of the query terms a passage contains (the portable fallback)."""
    ranks = []
    for _, _, passage in candidates:
        lowered = _normalize(passage)
        ranks.append(sum(1 for term in terms if term in lowered) / len(terms))
    return ranks


def passages_for_question(facts: QuestionFacts, *, limit: int = 3) -> list[Passage]:
    """The best `limit` passages of the question's topic documents, best first."""
    terms = query_terms(facts.question_text, facts.answer_text)
    if not terms:
        return []
    japanese = any(_JAPANESE.search(text) for text in (facts.question_text, facts.answer_text))
    use_fulltext = connection.vendor == "postgresql" and not japanese
    documents = _documents_by_fulltext(facts, terms) if use_fulltext else []
    if not documents:
        use_fulltext = False
        documents = list(_topic_documents(facts).order_by("id").values("id", "title", "extracted_text")[:50])
    candidates = _candidates(documents, terms)
    if not candidates:
        return []
    ranks = _rank_fulltext(candidates, terms) if use_fulltext else _rank_overlap(candidates, terms)
    answer = _normalize(facts.answer_text).strip()
    scored, seen = [], set()
    for (doc_id, title, passage), rank in zip(candidates, ranks, strict=True):
        if rank <= 0 or (key := _normalize(passage)) in seen:
            continue  # (one passage in two documents, the notes as PDF and DOCX: quoted once)
        seen.add(key)
        if answer and whole_occurrences(key, answer):  # (the answer "CO" is not in "contains")
            rank *= ANSWER_BOOST
        scored.append(Passage(document_id=doc_id, title=title, snippet=passage, rank=rank))
    scored.sort(key=lambda p: -p.rank)  # stable: ties keep document rank and text order
    return [p for p in scored if p.rank >= RELATIVE_MIN_RANK * scored[0].rank][:limit] if scored else []
