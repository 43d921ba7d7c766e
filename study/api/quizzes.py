"""API views for quizzes (placeholder until its issue lands)."""

from rest_framework import viewsets


class QuizSessionViewSet(viewsets.GenericViewSet):
    pass
