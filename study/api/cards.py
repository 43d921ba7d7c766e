"""API views for cards (placeholder until its issue lands)."""

from rest_framework import viewsets


class CardViewSet(viewsets.GenericViewSet):
    pass
