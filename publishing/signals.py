"""Publishing's side of writes it does not own: a user's deletion retracts their published rows."""

from typing import Any

from .services import user_published_retract


def user_pre_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Runs inside the deleting transaction, before the cascade removes the user's sources."""
    user_published_retract(user_id=instance.pk)
