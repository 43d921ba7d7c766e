"""PostgreSQL only: TRUNCATE of study_cardevidence renders the card bodies again (study_memocard.body, 0002).

Row triggers and transition tables do not see a TRUNCATE; this statement trigger touches every card, whose
body trigger then renders it without the evidence that is gone. (When study_memocard is truncated in the
same statement, as Django's test flush does, there is nothing left to touch.)
"""

from django.db import migrations

from studyserver.migration_operations import run_sql_on_postgresql

FORWARD = r"""
CREATE FUNCTION study_cardevidence_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE study_memocard SET body = body;
    RETURN NULL;
END
$$;

CREATE TRIGGER study_cardevidence_truncated AFTER TRUNCATE ON study_cardevidence
    FOR EACH STATEMENT EXECUTE FUNCTION study_cardevidence_truncated();
"""

BACKWARD = r"""
DROP TRIGGER study_cardevidence_truncated ON study_cardevidence;
DROP FUNCTION study_cardevidence_truncated();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("study", "0002_memocard_body"),
    ]

    operations = [
        run_sql_on_postgresql(FORWARD, BACKWARD),
    ]
