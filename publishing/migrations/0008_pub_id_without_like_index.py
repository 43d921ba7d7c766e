"""`Published.pub_id` loses the second index `unique=True` gave it on PostgreSQL.

For a unique CharField, Django adds beside the unique index a `varchar_pattern_ops` index for LIKE queries. No
lookup uses it: pub_ids are read whole (`=` and `IN`, the admin's search too). Every write of a published row
paid for it, as the drain moves each row's `seq` (so its index entries are all written again). The uniqueness
is now a constraint in Meta that keeps the name PostgreSQL gave the field's (`publishing_published_pub_id_key`),
so the database side only drops the LIKE index, on PostgreSQL, CONCURRENTLY (outside a transaction, so the
migration is not atomic: no lock that stops the feed's reads or the drain's writes), and creates it again when
migrated back. The generated operations would instead drop the unique index and build it again, over the whole
feed, under a lock. SQLite never had the LIKE index. The state operations are the ones `makemigrations`
generated.
"""

from django.conf import settings
from django.db import migrations, models

from studyserver.migration_operations import run_sql_on_postgresql

LIKE_INDEX = "publishing_published_pub_id_bf5a3e06_like"


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL's DROP/CREATE INDEX CONCURRENTLY run outside a transaction

    dependencies = [
        ('publishing', '0007_published_seq_chk'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='published',
                    name='pub_id',
                    field=models.CharField(editable=False, max_length=32),
                ),
                migrations.AddConstraint(
                    model_name='published',
                    constraint=models.UniqueConstraint(fields=('pub_id',), name='publishing_published_pub_id_key'),
                ),
            ],
            database_operations=[
                run_sql_on_postgresql(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{LIKE_INDEX}"',
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{LIKE_INDEX}" ON "publishing_published" '
                    f'("pub_id" varchar_pattern_ops)',
                ),
            ],
        ),
    ]
