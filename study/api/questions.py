"""API views for questions (placeholder until its issue lands)."""

from rest_framework import viewsets


class QuestionViewSet(viewsets.GenericViewSet):
    pass
