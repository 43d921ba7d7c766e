"""Plain values passed between retrieval and the explainers (no ORM objects cross this line)."""

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class QuestionFacts:
    question_id: int
    topic_id: int
    user_id: int
    subject: str
    question_text: str
    choices: tuple[str, ...]
    correct_choice: int
    explanation: str = ""

    @property
    def answer_text(self) -> str:
        index = self.correct_choice - 1
        return self.choices[index] if 0 <= index < len(self.choices) else ""


@dataclass(frozen=True)
class Passage:
    document_id: int
    title: str
    snippet: str
    rank: float

    def as_json(self) -> dict:
        data = asdict(self)
        data["rank"] = round(self.rank, 6)
        return data


@dataclass(frozen=True)
class Draft:
    text: str
    backend: str


class ExplainerUnavailable(Exception):
    """The configured explainer could not answer (after its own retries)."""


class ExplainerRefused(ExplainerUnavailable):
    """The explainer refused the request in a way no later try changes (400, 401, 403, 404: a wrong key, model or
    URL), or its URL is unusable: the run falls back at once instead of retrying for minutes."""
