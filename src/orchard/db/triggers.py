"""The triggers that alone maintain ``artifacts.ref_count`` and the content
epoch (below).

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


# --- the content epoch (migration 0007) -------------------------------------------------------
#
# ``content_epoch`` holds one row whose ``value`` goes up with every committed
# change of what a read answers: projects (visibility, upstream setting),
# packages, versions (yanks), files, members and their roles, upstream
# sources, and artifacts deleted by gc. Servers compare it with the value
# their near cache was filled under (cache/epoch.py). Being triggers, every
# writer is covered: the API, the CLI on the host, a hand-run SQL statement.
#
# SQLite has one writer at a time: a plain row trigger. On PostgreSQL the bump
# is a deferred constraint trigger: it runs at COMMIT, once per transaction
# (a transaction-local setting marks it done), so the epoch row is locked only
# while the transaction commits, after every other lock it takes: two
# transactions cannot deadlock on it. The same function NOTIFYs the channel
# that servers listen on; PostgreSQL delivers it only if the commit succeeds.

EPOCH_TABLE = "content_epoch"
EPOCH_CHANNEL = "orchard_content"
# (table, the operations that change what a read answers)
CONTENT_TABLES = (
    ("projects", ("INSERT", "UPDATE", "DELETE")),
    ("packages", ("INSERT", "UPDATE", "DELETE")),
    ("versions", ("INSERT", "UPDATE", "DELETE")),
    ("files", ("INSERT", "UPDATE", "DELETE")),
    ("project_members", ("INSERT", "UPDATE", "DELETE")),
    ("upstream_sources", ("INSERT", "UPDATE", "DELETE")),
    ("artifacts", ("DELETE",)),  # gc: no kept answer may point at a deleted blob
)


def _sqlite_epoch_create() -> list[str]:
    return [
        f"""
        CREATE TRIGGER {table}_content_{op.lower()} AFTER {op} ON {table}
        BEGIN
            UPDATE {EPOCH_TABLE} SET value = value + 1 WHERE id = 1;
        END
        """
        for table, ops in CONTENT_TABLES
        for op in ops
    ]


def _sqlite_epoch_drop() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_content_{op.lower()}"
        for table, ops in CONTENT_TABLES
        for op in ops
    ]


def _postgres_epoch_create() -> list[str]:
    function = f"""
    CREATE OR REPLACE FUNCTION orchard_content_changed() RETURNS trigger AS $$
    DECLARE
        bumped bigint;
    BEGIN
        IF current_setting('orchard.content_changed', true) IS DISTINCT FROM 'on' THEN
            PERFORM set_config('orchard.content_changed', 'on', true);
            UPDATE {EPOCH_TABLE} SET value = value + 1 WHERE id = 1 RETURNING value INTO bumped;
            PERFORM pg_notify('{EPOCH_CHANNEL}', bumped::text);
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql
    """
    return [function] + [
        f"""
        CREATE CONSTRAINT TRIGGER {table}_content_changed
        AFTER {" OR ".join(ops)} ON {table}
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION orchard_content_changed()
        """
        for table, ops in CONTENT_TABLES
    ]


def _postgres_epoch_drop() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_content_changed ON {table}" for table, _ in CONTENT_TABLES
    ] + ["DROP FUNCTION IF EXISTS orchard_content_changed()"]


def epoch_create_statements(dialect: str) -> list[str]:
    return _postgres_epoch_create() if dialect == "postgresql" else _sqlite_epoch_create()


def epoch_drop_statements(dialect: str) -> list[str]:
    return _postgres_epoch_drop() if dialect == "postgresql" else _sqlite_epoch_drop()
