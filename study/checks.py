"""System checks of the Celery configuration that settings alone cannot make (task limits live on the tasks)."""

from django.conf import settings
from django.core import checks


@checks.register("celery")
def visibility_timeout_outlasts_every_task(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Redis delivers an unacknowledged task again after CELERY_VISIBILITY_TIMEOUT: a task still running then (or
    waiting for its retry countdown) would run twice at once."""
    from study.tasks import EXPLAIN_CLAIMED_RETRY_SECONDS, explain_time_limits
    from studyserver.celery import app
    from studyserver.tasks_retry import RETRY

    if app.conf.task_always_eager:
        return []
    # Every app's tasks, as a starting worker imports them: autodiscovery is lazy, and outside a worker only the
    # modules imported so far had registered theirs (publishing's tasks, which take the default limit, had not).
    app.autodiscover_tasks(force=True)
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    longest, name = max(
        ((task.time_limit or app.conf.task_time_limit or 0, task_name)
         for task_name, task in app.tasks.items() if not task_name.startswith("celery.")),
        default=(0, ""),
    )
    if RETRY["retry_backoff_max"] > longest:
        longest, name = RETRY["retry_backoff_max"], "the longest retry countdown"
    if (claimed := explain_time_limits()[1] + EXPLAIN_CLAIMED_RETRY_SECONDS) > longest:
        longest, name = claimed, "explain_question's retry after another run's claim"
    if visibility > longest:
        return []
    return [checks.Error(
        f"CELERY_VISIBILITY_TIMEOUT ({visibility} s) must be above the longest task time limit ({longest} s, "
        f"{name}): Redis would deliver a task that is still running to a second worker.",
        hint="Raise CELERY_VISIBILITY_TIMEOUT (default 3600)" + (
            ", or lower the explainer's timeouts." if "explain" in name else "."),
        id="study.E001",
    )]
