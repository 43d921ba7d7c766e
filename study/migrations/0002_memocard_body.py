"""PostgreSQL only: each memo card keeps its rendered API body in `study_memocard.body`, kept current by triggers.

The review-groups list (up to 600 cards with evidence) is answered by PostgreSQL; rendering every card's JSON
on every request cost most of the request. The body is CardSerializer's output with `review_stage` null (every
list but the due list), rendered when the card's body columns or its evidence change:
- BEFORE INSERT / UPDATE OF the body columns on study_memocard renders NEW.body;
- after INSERT / UPDATE / DELETE statements on study_cardevidence, the cards concerned are touched (SET body =
  body), which renders them again. TRUNCATE of study_cardevidence does not (nothing here truncates it).

The column is not on the Django model: only the PostgreSQL fast path (study.selectors.cards) reads it; SQLite
has neither column nor triggers. Changing the card body means a new migration replacing study_card_body();
study/tests/api/test_json_bodies.py compares it with the serializer's output.
"""

from django.db import migrations

from studyserver.migration_operations import run_sql_on_postgresql

FORWARD = r"""
ALTER TABLE study_memocard ADD COLUMN body text NOT NULL DEFAULT '';

CREATE FUNCTION study_card_body(c study_memocard) RETURNS text LANGUAGE sql STABLE AS $$
    -- json_agg separates elements with ", \n "; a raw newline cannot occur inside a JSON string.
    SELECT replace(row_to_json(b)::text, E', \n ', ',') FROM (
        SELECT c.id, c.source_kind, c.format, c.cue, c.fact, c.cloze_text, c.needs_review, c.flagged_by,
               (SELECT coalesce(json_agg(e ORDER BY n.id), '[]') FROM study_cardevidence n
                CROSS JOIN LATERAL (SELECT n.source_type, n.source_id, n.snippet) e
                WHERE n.card_id = c.id) AS evidence,
               NULL::smallint AS review_stage
    ) b
$$;

-- VOLATILE on purpose: each of its expressions then takes a fresh snapshot, so a transaction that waited
-- on the card row for another one's evidence renders that committed evidence too (a STABLE function would
-- keep the waiting statement's older snapshot).
CREATE FUNCTION study_memocard_render_body() RETURNS trigger LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    NEW.body := study_card_body(NEW);
    RETURN NEW;
END
$$;

CREATE TRIGGER study_memocard_body
    BEFORE INSERT OR UPDATE OF source_kind, format, cue, fact, cloze_text, needs_review, flagged_by, body
    ON study_memocard FOR EACH ROW EXECUTE FUNCTION study_memocard_render_body();

CREATE FUNCTION study_cardevidence_touch_cards() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- SET body = body fires study_memocard_body, which renders the card with its current evidence.
    IF TG_OP = 'INSERT' THEN
        UPDATE study_memocard SET body = body WHERE id IN (SELECT card_id FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE study_memocard SET body = body
        WHERE id IN (SELECT card_id FROM new_rows UNION SELECT card_id FROM old_rows);
    ELSE
        UPDATE study_memocard SET body = body WHERE id IN (SELECT card_id FROM old_rows);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER study_cardevidence_inserted AFTER INSERT ON study_cardevidence
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION study_cardevidence_touch_cards();
CREATE TRIGGER study_cardevidence_updated AFTER UPDATE ON study_cardevidence
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION study_cardevidence_touch_cards();
CREATE TRIGGER study_cardevidence_deleted AFTER DELETE ON study_cardevidence
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION study_cardevidence_touch_cards();

UPDATE study_memocard SET body = body;
"""

BACKWARD = r"""
DROP TRIGGER study_cardevidence_deleted ON study_cardevidence;
DROP TRIGGER study_cardevidence_updated ON study_cardevidence;
DROP TRIGGER study_cardevidence_inserted ON study_cardevidence;
DROP FUNCTION study_cardevidence_touch_cards();
DROP TRIGGER study_memocard_body ON study_memocard;
DROP FUNCTION study_memocard_render_body();
DROP FUNCTION study_card_body(study_memocard);
ALTER TABLE study_memocard DROP COLUMN body;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("study", "0001_initial"),
    ]

    operations = [
        run_sql_on_postgresql(FORWARD, BACKWARD),
    ]
