"""Admin template tags of the publishing app: `{% outbox_status %}` (undrained rows, oldest age)."""

from django import template

from publishing.selectors import outbox_status as outbox_status_figures

register = template.Library()


@register.inclusion_tag("publishing/outbox_status.html")
def outbox_status() -> dict:
    """Render the outbox figures; load with `{% load publishing_admin %}`."""
    figures = outbox_status_figures()
    age = figures["oldest_age"]
    figures["oldest_age_seconds"] = int(age.total_seconds()) if age is not None else None
    return figures
