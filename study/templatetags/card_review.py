"""Template tags of the admin review queue: the pending card count for the admin index."""

from django import template

from study.selectors.cards import cards_needing_review_count

register = template.Library()


@register.simple_tag
def pending_card_count() -> int:
    """Live cards of every user that wait for review."""
    return cards_needing_review_count()
