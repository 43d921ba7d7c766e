"""API views for documents (placeholder until its issue lands)."""

from rest_framework import viewsets


class DocumentViewSet(viewsets.GenericViewSet):
    pass
