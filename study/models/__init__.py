"""Study models, one module per aggregate."""

from .analyses import QuestionExplanation, SessionAnalysis
from .cards import CardEvidence, MemoCard
from .documents import Document
from .progress import CardProgress, QuestionProgress
from .questions import Question
from .quizzes import QuestionAttempt, QuizSession
from .sessions import SessionAsset, StudySession
from .tokens import ApiToken
from .topics import StudyTopic, TopicDocument

__all__ = [
    "ApiToken",
    "CardEvidence",
    "CardProgress",
    "Document",
    "MemoCard",
    "Question",
    "QuestionAttempt",
    "QuestionExplanation",
    "QuestionProgress",
    "QuizSession",
    "SessionAnalysis",
    "SessionAsset",
    "StudySession",
    "StudyTopic",
    "TopicDocument",
]
