"""Django admin for the study app, one module per area."""

from . import cards, documents, quizzes, sessions, tokens, topics  # noqa: F401  (registers the ModelAdmins)
