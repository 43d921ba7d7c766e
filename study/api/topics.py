"""API views for topics (placeholder until its issue lands)."""

from rest_framework import viewsets


class StudyTopicViewSet(viewsets.GenericViewSet):
    pass
