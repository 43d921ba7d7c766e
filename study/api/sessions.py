"""API views for sessions (placeholder until its issue lands)."""

from rest_framework import viewsets


class StudySessionViewSet(viewsets.GenericViewSet):
    pass
