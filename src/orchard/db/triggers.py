"""The triggers that alone maintain ``artifacts.ref_count``.

A File row references one artifact; inserting, deleting (also by cascade)
or re-pointing a File adjusts the count in the same transaction. Dropping to
zero refreshes ``touched_at`` so that gc's grace period starts then.
"""

from __future__ import annotations

SQLITE_CREATE = [
    """
    CREATE TRIGGER files_ref_insert AFTER INSERT ON files
    BEGIN
        UPDATE artifacts SET ref_count = ref_count + 1 WHERE id = NEW.artifact_id;
    END
    """,
    """
    CREATE TRIGGER files_ref_delete AFTER DELETE ON files
    BEGIN
        UPDATE artifacts SET ref_count = ref_count - 1,
            touched_at = CURRENT_TIMESTAMP WHERE id = OLD.artifact_id;
    END
    """,
    """
    CREATE TRIGGER files_ref_update AFTER UPDATE OF artifact_id ON files
    WHEN OLD.artifact_id IS NOT NEW.artifact_id
    BEGIN
        UPDATE artifacts SET ref_count = ref_count - 1,
            touched_at = CURRENT_TIMESTAMP WHERE id = OLD.artifact_id;
        UPDATE artifacts SET ref_count = ref_count + 1 WHERE id = NEW.artifact_id;
    END
    """,
]

SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS files_ref_insert",
    "DROP TRIGGER IF EXISTS files_ref_delete",
    "DROP TRIGGER IF EXISTS files_ref_update",
]

POSTGRES_CREATE = [
    """
    CREATE OR REPLACE FUNCTION orchard_files_ref_count() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
            UPDATE artifacts SET ref_count = ref_count + 1 WHERE id = NEW.artifact_id;
        END IF;
        IF TG_OP = 'DELETE' OR TG_OP = 'UPDATE' THEN
            UPDATE artifacts SET ref_count = ref_count - 1, touched_at = now()
                WHERE id = OLD.artifact_id;
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER files_ref_insert_delete AFTER INSERT OR DELETE ON files
    FOR EACH ROW EXECUTE FUNCTION orchard_files_ref_count()
    """,
    """
    CREATE TRIGGER files_ref_update AFTER UPDATE OF artifact_id ON files
    FOR EACH ROW WHEN (OLD.artifact_id IS DISTINCT FROM NEW.artifact_id)
    EXECUTE FUNCTION orchard_files_ref_count()
    """,
]

POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS files_ref_update ON files",
    "DROP TRIGGER IF EXISTS files_ref_insert_delete ON files",
    "DROP FUNCTION IF EXISTS orchard_files_ref_count()",
]


def create_statements(dialect: str) -> list[str]:
    return POSTGRES_CREATE if dialect == "postgresql" else SQLITE_CREATE


def drop_statements(dialect: str) -> list[str]:
    return POSTGRES_DROP if dialect == "postgresql" else SQLITE_DROP
