"""Reads of documents: the user's live documents."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from study.models import Document


def documents_live(*, user: AbstractBaseUser) -> QuerySet[Document]:
    """The user's live (not soft-deleted) documents, newest first."""
    return Document.objects.live().filter(user=user).order_by("-created_at", "-id")


def document_get_live(*, user: AbstractBaseUser, document_id: int) -> Document | None:
    """One live document of the user, or None."""
    return documents_live(user=user).filter(pk=document_id).first()
