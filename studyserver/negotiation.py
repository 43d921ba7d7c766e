"""Content negotiation."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's, but `?format=` that names no renderer of the view is ignored (`Accept` decides): DRF answered it with
    a 404, also a valid POST, which then created nothing. One that names a renderer still picks it
    (`/api/schema?format=json`). The document and card lists read `?format=` as their filter and never as a
    renderer (their own negotiation)."""

    def filter_renderers(self, renderers, format):
        return [renderer for renderer in renderers if renderer.format == format] or renderers
