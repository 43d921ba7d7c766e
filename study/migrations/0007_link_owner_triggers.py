"""PostgreSQL only: a topic ↔ document link and a session ↔ document link join rows of one owner, enforced by triggers.

A check constraint cannot look at other tables, so triggers hold the rule on both sides:
- a link inserted or moved (study_topicdocument: user_id, topic_id, document_id; study_sessionasset: session_id,
  document_id) whose sides belong to different users raises;
- a topic, document or session whose user_id changes while a link ties it to rows of the old owner raises.
Both raise check_violation (an IntegrityError in Django) naming study_topicdocument_same_owner_chk or
study_sessionasset_same_owner_chk, as a constraint would.

Races: the link trigger reads each side's owner FOR KEY SHARE (the lock the deferred foreign key takes at commit,
taken now), and an owner change locks its row FOR UPDATE before looking for links, so one of the two waits for
the other and then sees its committed row. A side that does not exist is left to the foreign key.
SQLite (the demo) has no triggers; the admin forms and the services check the same rule there.

Links written before (the old admin let staff join two owners' rows) are not re-checked; they show up with
    SELECT l.id FROM study_topicdocument l JOIN study_studytopic t ON t.id = l.topic_id
    JOIN study_document d ON d.id = l.document_id WHERE l.user_id <> t.user_id OR l.user_id <> d.user_id;
    SELECT a.id FROM study_sessionasset a JOIN study_studysession s ON s.id = a.session_id
    JOIN study_document d ON d.id = a.document_id WHERE s.user_id <> d.user_id;
"""

from django.db import migrations

from studyserver.migration_operations import run_sql_on_postgresql

FORWARD = r"""
CREATE FUNCTION study_topicdocument_check_owner() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    topic_owner bigint;
    document_owner bigint;
BEGIN
    SELECT user_id INTO topic_owner FROM study_studytopic WHERE id = NEW.topic_id FOR KEY SHARE;
    SELECT user_id INTO document_owner FROM study_document WHERE id = NEW.document_id FOR KEY SHARE;
    IF NEW.user_id <> topic_owner OR NEW.user_id <> document_owner THEN
        RAISE EXCEPTION 'topic % (user %) and document % (user %) cannot be linked by user %',
            NEW.topic_id, topic_owner, NEW.document_id, document_owner, NEW.user_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'study_topicdocument_same_owner_chk',
                  TABLE = 'study_topicdocument';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER study_topicdocument_same_owner
    AFTER INSERT OR UPDATE OF user_id, topic_id, document_id ON study_topicdocument
    FOR EACH ROW EXECUTE FUNCTION study_topicdocument_check_owner();

CREATE FUNCTION study_sessionasset_check_owner() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    session_owner bigint;
    document_owner bigint;
BEGIN
    SELECT user_id INTO session_owner FROM study_studysession WHERE id = NEW.session_id FOR KEY SHARE;
    SELECT user_id INTO document_owner FROM study_document WHERE id = NEW.document_id FOR KEY SHARE;
    IF session_owner <> document_owner THEN
        RAISE EXCEPTION 'session % (user %) and document % (user %) belong to different users',
            NEW.session_id, session_owner, NEW.document_id, document_owner
            USING ERRCODE = 'check_violation', CONSTRAINT = 'study_sessionasset_same_owner_chk',
                  TABLE = 'study_sessionasset';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER study_sessionasset_same_owner
    AFTER INSERT OR UPDATE OF session_id, document_id ON study_sessionasset
    FOR EACH ROW EXECUTE FUNCTION study_sessionasset_check_owner();

-- One function for the three linked tables: TG_TABLE_NAME says which links to look at.
CREATE FUNCTION study_link_owner_change_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    link_constraint text;
BEGIN
    -- Waits for transactions linking this row right now (they hold FOR KEY SHARE on it); each statement below
    -- then sees their links (a fresh snapshot per statement).
    EXECUTE format('SELECT 1 FROM %I WHERE id = $1 FOR UPDATE', TG_TABLE_NAME) USING NEW.id;
    IF TG_TABLE_NAME = 'study_studytopic' THEN
        IF EXISTS (SELECT 1 FROM study_topicdocument l WHERE l.topic_id = NEW.id AND l.user_id <> NEW.user_id) THEN
            link_constraint := 'study_topicdocument_same_owner_chk';
        END IF;
    ELSIF TG_TABLE_NAME = 'study_document' THEN
        IF EXISTS (SELECT 1 FROM study_topicdocument l WHERE l.document_id = NEW.id AND l.user_id <> NEW.user_id) THEN
            link_constraint := 'study_topicdocument_same_owner_chk';
        ELSIF EXISTS (SELECT 1 FROM study_sessionasset a JOIN study_studysession s ON s.id = a.session_id
                      WHERE a.document_id = NEW.id AND s.user_id <> NEW.user_id) THEN
            link_constraint := 'study_sessionasset_same_owner_chk';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM study_sessionasset a JOIN study_document d ON d.id = a.document_id
                  WHERE a.session_id = NEW.id AND d.user_id <> NEW.user_id) THEN
        link_constraint := 'study_sessionasset_same_owner_chk';
    END IF;
    IF link_constraint IS NOT NULL THEN
        RAISE EXCEPTION '% %: its owner cannot change to user % while it is linked to rows of user %',
            TG_TABLE_NAME, NEW.id, NEW.user_id, OLD.user_id
            USING ERRCODE = 'check_violation', CONSTRAINT = link_constraint, TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER study_studytopic_link_owner AFTER UPDATE OF user_id ON study_studytopic
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION study_link_owner_change_check();
CREATE TRIGGER study_document_link_owner AFTER UPDATE OF user_id ON study_document
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION study_link_owner_change_check();
CREATE TRIGGER study_studysession_link_owner AFTER UPDATE OF user_id ON study_studysession
    FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id) EXECUTE FUNCTION study_link_owner_change_check();
"""

BACKWARD = r"""
DROP TRIGGER study_studysession_link_owner ON study_studysession;
DROP TRIGGER study_document_link_owner ON study_document;
DROP TRIGGER study_studytopic_link_owner ON study_studytopic;
DROP FUNCTION study_link_owner_change_check();
DROP TRIGGER study_sessionasset_same_owner ON study_sessionasset;
DROP FUNCTION study_sessionasset_check_owner();
DROP TRIGGER study_topicdocument_same_owner ON study_topicdocument;
DROP FUNCTION study_topicdocument_check_owner();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("study", "0006_card_format_labels"),
    ]

    operations = [
        run_sql_on_postgresql(FORWARD, BACKWARD),
    ]
