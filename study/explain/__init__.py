"""Explanation backends: passage retrieval from the topic's documents, the extractive writer, an HTTP LLM."""

from .base import Draft, ExplainerRefused, ExplainerUnavailable, Passage, QuestionFacts

__all__ = ["Draft", "ExplainerRefused", "ExplainerUnavailable", "Passage", "QuestionFacts"]
