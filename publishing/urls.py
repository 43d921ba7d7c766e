"""Viewer channel routes (/publish/...)."""

urlpatterns: list = []
