"""A row and the rows it points at belong to one user: composite foreign keys on (<fk>_id, user_id) (PostgreSQL).

SPEC "Ownership": every user-owned row has `user`, and a row refers only to rows of its own owner (a question to
its owner's topic, an attempt to its owner's quiz session and question, progress to its owner's last attempt, …). Nothing in the database said so; the
services only ever write same-owner rows, but the admin or a bug could write mixed ones.

Each referenced table gets a unique constraint on (id, user_id) (on the Django models, so every database has it),
and on PostgreSQL each referencing pair gets
    FOREIGN KEY (<fk>_id, user_id) REFERENCES <parent> (id, user_id) DEFERRABLE INITIALLY DEFERRED NOT VALID
named <table>_<fk>_same_owner_fk. It only checks (NO ACTION): the single-column foreign keys beside it keep doing
what Django's on_delete does (CASCADE, SET NULL). A NULL column is not checked (MATCH SIMPLE), so a card or study
session without a topic, or a card without a source question, stays allowed. The key also refuses a parent's
owner changing while rows of the old owner point at it (nothing in the code changes an owner; the admin shows
owners read-only after creation). A violation is foreign_key_violation (23503) at commit naming the constraint;
studyserver.errors answers it 404 (another user's object).

The link tables study_topicdocument and study_sessionasset keep their triggers (study/0007).

NOT VALID: rows written before (the old admin let staff pick any owner) do not stop the deploy and are not
repaired by a guess; every row inserted or whose key columns change is checked. They show up with, e.g.,
    SELECT q.id FROM study_question q JOIN study_studytopic t ON t.id = q.study_topic_id WHERE q.user_id <> t.user_id;
and once none are left, `ALTER TABLE <table> VALIDATE CONSTRAINT <name>;` checks the old rows too.
SQLite (the demo) has the unique constraints only; the admin forms check the same rule there.
"""

from django.conf import settings
from django.db import migrations, models

from studyserver.migration_operations import run_sql_on_postgresql

# (table, foreign key column, referenced table, constraint name)
SAME_OWNER_KEYS = [
    ("study_question", "study_topic_id", "study_studytopic", "study_question_study_topic_same_owner_fk"),
    ("study_quizsession", "study_topic_id", "study_studytopic", "study_quizsession_study_topic_same_owner_fk"),
    ("study_studysession", "study_topic_id", "study_studytopic", "study_studysession_study_topic_same_owner_fk"),
    ("study_memocard", "study_topic_id", "study_studytopic", "study_memocard_study_topic_same_owner_fk"),
    ("study_memocard", "source_question_id", "study_question", "study_memocard_source_question_same_owner_fk"),
    ("study_questionattempt", "quiz_session_id", "study_quizsession", "study_questionattempt_quiz_session_same_owner_fk"),
    ("study_questionattempt", "question_id", "study_question", "study_questionattempt_question_same_owner_fk"),
    ("study_questionprogress", "question_id", "study_question", "study_questionprogress_question_same_owner_fk"),
    (
        "study_questionprogress", "last_attempt_id", "study_questionattempt",
        "study_questionprogress_last_attempt_same_owner_fk",
    ),
    ("study_questionexplanation", "question_id", "study_question", "study_questionexplanation_question_same_owner_fk"),
    ("study_cardprogress", "card_id", "study_memocard", "study_cardprogress_card_same_owner_fk"),
    ("study_sessionanalysis", "quiz_session_id", "study_quizsession", "study_sessionanalysis_quiz_session_same_owner_fk"),
]

FORWARD = "\n".join(
    f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}, user_id) REFERENCES {parent} (id, user_id)"
    " DEFERRABLE INITIALLY DEFERRED NOT VALID;"
    for table, column, parent, name in SAME_OWNER_KEYS
)

BACKWARD = "\n".join(
    f"ALTER TABLE {table} DROP CONSTRAINT {name};" for table, _column, _parent, name in reversed(SAME_OWNER_KEYS)
)


class Migration(migrations.Migration):

    dependencies = [
        ("study", "0008_apitoken_proxy"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="memocard",
            constraint=models.UniqueConstraint(fields=("id", "user"), name="study_memocard_id_user_uniq"),
        ),
        migrations.AddConstraint(
            model_name="question",
            constraint=models.UniqueConstraint(fields=("id", "user"), name="study_question_id_user_uniq"),
        ),
        migrations.AddConstraint(
            model_name="quizsession",
            constraint=models.UniqueConstraint(fields=("id", "user"), name="study_quizsession_id_user_uniq"),
        ),
        migrations.AddConstraint(
            model_name="questionattempt",
            constraint=models.UniqueConstraint(fields=("id", "user"), name="study_questionattempt_id_user_uniq"),
        ),
        migrations.AddConstraint(
            model_name="studytopic",
            constraint=models.UniqueConstraint(fields=("id", "user"), name="study_studytopic_id_user_uniq"),
        ),
        run_sql_on_postgresql(FORWARD, BACKWARD),
    ]
