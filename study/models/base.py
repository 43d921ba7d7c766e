"""Shared model pieces: timestamps, soft delete, and a PostgreSQL-only index."""

from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.backends.ddl_references import Statement
from django.utils import timezone


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class LiveQuerySet(models.QuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)


class SoftDeleteModel(models.Model):
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=False)

    objects = LiveQuerySet.as_manager()

    class Meta:
        abstract = True

    def update_if_live(self, condition: dict | None = None, /, **values) -> bool:
        """Write `values` to this row, and onto this instance, only while the row is live (and matches `condition`,
        field lookups); whether it was.

        A conditional UPDATE: a write (a delete too) that read the row before a concurrent delete committed waits
        for that delete, then finds no live row, and its caller changes and publishes nothing.
        """
        if not type(self).objects.live().filter(pk=self.pk, **(condition or {})).update(**values):
            return False
        for field, value in values.items():
            setattr(self, field, value)
        return True


def enum_check(field: str, choices: type[models.TextChoices], name: str, *, nullable: bool = False):
    """A CHECK constraint that keeps `field` within the values of `choices`."""
    condition = models.Q(**{f"{field}__in": choices.values})
    if nullable:
        condition |= models.Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=name)


class PostgresOnlyIndexMixin:
    """An index created on PostgreSQL only; the embedded SQLite demo gets a no-op.

    For index features SQLite lacks (GIN, NULLS FIRST); the demo's small tables need no index.
    """

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return Statement("SELECT 1")
        return super().create_sql(model, schema_editor, using=using, **kwargs)

    def remove_sql(self, model, schema_editor, **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            return Statement("SELECT 1")
        return super().remove_sql(model, schema_editor, **kwargs)


class PostgresOnlyIndex(PostgresOnlyIndexMixin, models.Index):
    pass


class PostgresGinIndex(PostgresOnlyIndexMixin, GinIndex):
    """Full-text ranking runs on PostgreSQL; the SQLite fallback scans without an index."""
