"""Foreign keys that lead a composite index lose their own single-column index.

Thirteen foreign keys had an index of their own besides a composite index or unique constraint whose first column
they are (the model field says which). The composite serves every lookup the single column served, including the
database's own checks when a parent row goes; the single column only cost writes. They were the hot writes' extra
work: an ingest inserts 100 attempts (two such indexes each) and upserts 100 question progress rows, and a rating
upserts a card progress row.

The database side drops the indexes by name, on PostgreSQL and SQLite alike (Django names them the same on both),
and creates them again when migrated back. On PostgreSQL it does so CONCURRENTLY, one index at a time outside a
transaction (so the migration is not atomic), which never holds a lock that stops reads and writes; a run cut
short leaves some indexes dropped, and running it again drops the rest. Django's own operation for
`db_index=False` on a foreign key drops and adds the foreign key constraint too, which on PostgreSQL checks the
whole table again under a lock that stops writes. The state operations are the ones `makemigrations` generated.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# (table, column, index) of each dropped index
INDEXES = [
    ("study_cardprogress", "user_id", "study_cardprogress_user_id_4cd55a99"),
    ("study_document", "user_id", "study_document_user_id_f52c2a1b"),
    ("study_memocard", "user_id", "study_memocard_user_id_9c344bc0"),
    ("study_question", "study_topic_id", "study_question_study_topic_id_63540890"),
    ("study_question", "user_id", "study_question_user_id_03b6b8b8"),
    ("study_questionattempt", "question_id", "study_questionattempt_question_id_949f383c"),
    ("study_questionattempt", "quiz_session_id", "study_questionattempt_quiz_session_id_725c896e"),
    ("study_questionprogress", "user_id", "study_questionprogress_user_id_9193057a"),
    ("study_sessionasset", "session_id", "study_sessionasset_session_id_6143d019"),
    ("study_quizsession", "user_id", "study_quizsession_user_id_8396e355"),
    ("study_studysession", "user_id", "study_studysession_user_id_475f228d"),
    ("study_studytopic", "user_id", "study_studytopic_user_id_ad12ea9c"),
    ("study_topicdocument", "topic_id", "study_topicdocument_topic_id_cf5bc181"),
]


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def drop_indexes(apps, schema_editor):
    for _table, _column, index in INDEXES:
        schema_editor.execute(f'DROP INDEX{_concurrently(schema_editor)} IF EXISTS "{index}"')


def create_indexes(apps, schema_editor):
    for table, column, index in INDEXES:
        schema_editor.execute(f'CREATE INDEX{_concurrently(schema_editor)} IF NOT EXISTS "{index}" ON "{table}" ("{column}")')


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL's DROP/CREATE INDEX CONCURRENTLY run outside a transaction

    dependencies = [
        ('study', '0018_constraint_messages'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='cardprogress',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='card_progress', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='document',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='documents', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='memocard',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memo_cards', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='question',
                    name='study_topic',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='questions', to='study.studytopic'),
                ),
                migrations.AlterField(
                    model_name='question',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='questions', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='questionattempt',
                    name='question',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='study.question'),
                ),
                migrations.AlterField(
                    model_name='questionattempt',
                    name='quiz_session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='study.quizsession'),
                ),
                migrations.AlterField(
                    model_name='questionprogress',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='question_progress', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='quizsession',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='quiz_sessions', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='sessionasset',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='assets', to='study.studysession'),
                ),
                migrations.AlterField(
                    model_name='studysession',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='study_sessions', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='studytopic',
                    name='user',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='study_topics', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='topicdocument',
                    name='topic',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='document_links', to='study.studytopic'),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
