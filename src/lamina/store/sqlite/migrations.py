"""The schema, as an ordered list of migrations. Append; never edit one that has shipped.

`MIGRATIONS[i]` takes the database from version i to i + 1. `migrate` applies the missing ones
at open, all in one transaction with the `schema_version` bookkeeping, so a crash mid-way leaves
the previous version intact.

Notes on the schema:
- Functions are keyed by name in `functions` (identity, tags) and by (name, version) in
  `function_versions` (one FunctionConfig as JSON per version; `$LATEST` is version '$LATEST'),
  so published versions and aliases fit without reshaping anything.
- Log events carry integer group and stream ids (they are the high-volume rows) and get ids
  from AUTOINCREMENT: an id is never reused, even after the newest rows are deleted, so cursors
  built from ids stay valid. Ids are commit order, and SQLite appends the rowid to every index,
  so (stream) and (group) are really (stream, id) and (group, id): paging, tailing and following
  a stream or a group are range scans (GetLogEvents either direction: one environment writes a
  stream in timestamp order). (group, ts) serves FilterLogEvents' time windows across streams
  and retention's delete-older-than. Three indexes cost ~25% of raw insert speed, measured at
  ~160k events/s without Python in the way: far above what the writer thread feeds it.
- `log_groups.retention_days` is there for PutRetentionPolicy (NULL = never expire).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

from lamina.errors import ConfigError

MIGRATIONS: list[str] = [
    # 1: functions, invocation records, logs
    """
    CREATE TABLE functions (
        name        TEXT PRIMARY KEY,
        created     REAL NOT NULL,
        tags        TEXT NOT NULL DEFAULT '{}'      -- JSON object
    ) WITHOUT ROWID;

    CREATE TABLE function_versions (
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,                  -- '$LATEST' or '1', '2', ...
        revision_id TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,                  -- base64, as in the config
        config      TEXT NOT NULL,                  -- JSON of FunctionConfig
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID;

    CREATE TABLE invocations (
        id                  INTEGER PRIMARY KEY,
        request_id          TEXT NOT NULL,          -- not unique: async retries keep their id
        function            TEXT NOT NULL,
        version             TEXT NOT NULL,
        start               REAL NOT NULL,          -- epoch seconds
        duration_ms         REAL NOT NULL,
        billed_ms           INTEGER NOT NULL,
        memory_size         INTEGER NOT NULL,
        max_memory_used_mb  INTEGER NOT NULL,
        cold                INTEGER NOT NULL,
        init_duration_ms    REAL,
        outcome             TEXT NOT NULL,
        error_type          TEXT,
        log_stream          TEXT NOT NULL
    );
    CREATE INDEX invocations_by_function ON invocations (function, start);
    CREATE INDEX invocations_by_start ON invocations (start);

    CREATE TABLE log_groups (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        created_ms      INTEGER NOT NULL,
        retention_days  INTEGER,
        stored_bytes    INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE log_streams (
        id                  INTEGER PRIMARY KEY,
        group_id            INTEGER NOT NULL,
        name                TEXT NOT NULL,
        created_ms          INTEGER NOT NULL,
        first_event_ms      INTEGER,
        last_event_ms       INTEGER,
        last_ingestion_ms   INTEGER,
        stored_bytes        INTEGER NOT NULL DEFAULT 0,
        UNIQUE (group_id, name)
    );
    CREATE INDEX log_streams_by_last_event ON log_streams (group_id, last_event_ms);

    CREATE TABLE log_events (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id        INTEGER NOT NULL,
        stream_id       INTEGER NOT NULL,
        ts_ms           INTEGER NOT NULL,
        ingestion_ms    INTEGER NOT NULL,
        message         TEXT NOT NULL
    );
    CREATE INDEX log_events_by_stream ON log_events (stream_id);
    CREATE INDEX log_events_by_group ON log_events (group_id);
    CREATE INDEX log_events_by_group_time ON log_events (group_id, ts_ms);
    """,
    # 2: streams (sources/streams): streams, their shards, their records
    """
    CREATE TABLE streams (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: iterators name it
        name            TEXT NOT NULL UNIQUE,
        created_ms      INTEGER NOT NULL,
        mode            TEXT NOT NULL,                  -- PROVISIONED | ON_DEMAND
        retention_hours INTEGER NOT NULL,
        max_record_kib  INTEGER NOT NULL,
        tags            TEXT NOT NULL DEFAULT '{}'      -- JSON object
    );

    CREATE TABLE stream_shards (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused
        stream_id       INTEGER NOT NULL,
        shard_index     INTEGER NOT NULL,               -- shardId-000000000007 is 7
        start_hash      TEXT NOT NULL,                  -- 128-bit hash keys, as decimal text
        end_hash        TEXT NOT NULL,
        parent_index    INTEGER,
        adjacent_parent_index INTEGER,
        starting_seq    INTEGER NOT NULL,
        ending_seq      INTEGER,                        -- set when the shard closes
        UNIQUE (stream_id, shard_index)
    );

    CREATE TABLE stream_records (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- the sequence number's counter
        shard_id        INTEGER NOT NULL,
        arrival_ms      INTEGER NOT NULL,
        partition_key   TEXT NOT NULL,
        data            BLOB NOT NULL
    );
    CREATE INDEX stream_records_by_shard ON stream_records (shard_id);
    """,
    # 3: when each stream shard opened and closed (epoch ms; NULL for shards from before), for
    # ListShards' timestamp filters and for dropping closed shards once retention has passed them
    """
    ALTER TABLE stream_shards ADD COLUMN opened_ms INTEGER;
    ALTER TABLE stream_shards ADD COLUMN closed_ms INTEGER;
    """,
    # 4: published versions (numbers are never reused, even after a delete), aliases, reserved and
    # provisioned concurrency
    """
    ALTER TABLE functions ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE function_aliases (
        name             TEXT NOT NULL,
        alias            TEXT NOT NULL,
        function_version TEXT NOT NULL,
        description      TEXT NOT NULL DEFAULT '',
        routing          TEXT NOT NULL DEFAULT '{}',   -- JSON {"version": weight}
        revision_id      TEXT NOT NULL,
        PRIMARY KEY (name, alias)
    ) WITHOUT ROWID;

    CREATE TABLE function_concurrency (
        name             TEXT PRIMARY KEY,
        reserved         INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE provisioned_concurrency (
        name             TEXT NOT NULL,
        qualifier        TEXT NOT NULL,                -- a version number or an alias
        requested        INTEGER NOT NULL,
        last_modified    TEXT NOT NULL,
        PRIMARY KEY (name, qualifier)
    ) WITHOUT ROWID;
    """,
    # 5: asynchronous invocation: the durable event queue (a row per queued or failed event; done
    # events are deleted; 'in-flight' is not stored, so a crash re-queues a running event) and the
    # EventInvokeConfigs (per function and qualifier; '$LATEST' for an unqualified Put)
    """
    CREATE TABLE async_events (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,  -- enqueue order
        id              TEXT NOT NULL UNIQUE,       -- the request id, the same across retries
        function        TEXT NOT NULL,
        qualifier       TEXT,                       -- as invoked; NULL = unqualified
        payload         BLOB NOT NULL,
        enqueued        REAL NOT NULL,              -- epoch seconds
        attempts        INTEGER NOT NULL,           -- runs so far (approximateInvokeCount)
        next_attempt    REAL NOT NULL,              -- epoch seconds
        state           TEXT NOT NULL,              -- queued | failed
        last_error      TEXT,
        condition       TEXT,                       -- RetriesExhausted | EventAgeExceeded | ...
        throttles       INTEGER NOT NULL            -- consecutive throttles: the backoff exponent
    );
    CREATE INDEX async_events_by_function ON async_events (function, state);
    CREATE INDEX async_events_by_state ON async_events (state);

    CREATE TABLE event_invoke_configs (
        name            TEXT NOT NULL,
        qualifier       TEXT NOT NULL,
        last_modified   REAL NOT NULL,
        max_retries     INTEGER,                    -- NULL = the default
        max_age         INTEGER,
        on_success      TEXT,
        on_failure      TEXT,
        PRIMARY KEY (name, qualifier)
    ) WITHOUT ROWID;
    """,
    # 6: IAM and STS (lamina/iam): roles, their inline policies and managed-policy attachments,
    # customer managed policies, users, access keys, STS sessions. Names compare without case,
    # as IAM's do. Role and user ARNs are derived from the account id; policies are keyed by ARN.
    """
    CREATE TABLE iam_roles (
        name            TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
        id              TEXT NOT NULL,
        path            TEXT NOT NULL,
        trust_policy    TEXT NOT NULL,              -- verbatim
        description     TEXT,
        max_session     INTEGER NOT NULL,
        tags            TEXT NOT NULL,              -- JSON [[key, value], ...]
        created         REAL NOT NULL               -- epoch seconds
    ) WITHOUT ROWID;

    CREATE TABLE iam_role_policies (
        role            TEXT NOT NULL COLLATE NOCASE,
        name            TEXT NOT NULL COLLATE NOCASE,
        document        TEXT NOT NULL,
        PRIMARY KEY (role, name)
    ) WITHOUT ROWID;

    CREATE TABLE iam_role_attachments (
        role            TEXT NOT NULL COLLATE NOCASE,
        policy_arn      TEXT NOT NULL,
        attached        INTEGER NOT NULL,           -- order of attachment
        PRIMARY KEY (role, policy_arn)
    ) WITHOUT ROWID;
    CREATE INDEX iam_role_attachments_by_policy ON iam_role_attachments (policy_arn);

    CREATE TABLE iam_policies (
        arn             TEXT NOT NULL PRIMARY KEY,  -- as created (the account id at the time)
        name            TEXT NOT NULL,
        id              TEXT NOT NULL,
        path            TEXT NOT NULL,
        document        TEXT NOT NULL,
        description     TEXT,
        tags            TEXT NOT NULL,
        created         REAL NOT NULL,
        updated         REAL NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE iam_users (
        name            TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
        id              TEXT NOT NULL,
        path            TEXT NOT NULL,
        tags            TEXT NOT NULL,
        created         REAL NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE iam_access_keys (
        id              TEXT NOT NULL PRIMARY KEY,
        user            TEXT NOT NULL COLLATE NOCASE,
        secret          TEXT NOT NULL,
        status          TEXT NOT NULL,              -- Active | Inactive
        created         REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX iam_access_keys_by_user ON iam_access_keys (user);

    CREATE TABLE sts_sessions (
        id              TEXT NOT NULL PRIMARY KEY,  -- the temporary access key id
        secret          TEXT NOT NULL,
        token           TEXT NOT NULL,
        arn             TEXT NOT NULL,
        user_id         TEXT NOT NULL,
        expires         REAL NOT NULL               -- epoch seconds
    ) WITHOUT ROWID;
    CREATE INDEX sts_sessions_by_expiry ON sts_sessions (expires);
    """,
    # 7: event source mappings (sources/mappings): the mapping's settings as JSON, a checkpoint
    # per (mapping, shard) that moves only once a batch's outcome is decided, and the batches that
    # went to OnFailure, kept with their records for `lamina mappings replay`
    """
    CREATE TABLE event_source_mappings (
        uuid            TEXT NOT NULL PRIMARY KEY,
        function        TEXT NOT NULL,              -- the function's name (unqualified)
        source_arn      TEXT NOT NULL,
        config          TEXT NOT NULL,              -- JSON of MappingConfig
        created         REAL NOT NULL               -- epoch seconds: listing order
    ) WITHOUT ROWID;
    CREATE INDEX event_source_mappings_by_function ON event_source_mappings (function);
    CREATE INDEX event_source_mappings_by_source ON event_source_mappings (source_arn);

    CREATE TABLE mapping_checkpoints (
        uuid            TEXT NOT NULL,
        shard           TEXT NOT NULL,              -- the source's shard id
        position        TEXT NOT NULL,              -- the source's position: processed up to here
        finished        INTEGER NOT NULL DEFAULT 0, -- a closed shard read to its end
        window          TEXT,                       -- an open tumbling window: JSON [start, end, state]
        updated         REAL NOT NULL,
        PRIMARY KEY (uuid, shard)
    ) WITHOUT ROWID;

    CREATE TABLE mapping_failed_batches (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        uuid            TEXT NOT NULL,
        shard           TEXT NOT NULL,
        condition       TEXT NOT NULL,
        record          TEXT NOT NULL,              -- the OnFailure record (JSON) as delivered
        payload         BLOB NOT NULL,              -- the batch's event ({"Records": [...]})
        failed          REAL NOT NULL,
        replayed        REAL                        -- last replay, NULL if never
    );
    CREATE INDEX mapping_failed_batches_by_uuid ON mapping_failed_batches (uuid);
    """,
]


def migrate(conn: sqlite3.Connection, migrations: list[str] = MIGRATIONS) -> int:
    """Bring the database up to `len(migrations)`; returns the version it was at before."""
    conn.execute("BEGIN IMMEDIATE")  # also serialises two processes opening one fresh database
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)"
        )
        (current,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
        if current > len(migrations):
            raise ConfigError(
                f"the database is at schema version {current}, newer than this Lamina knows"
                f" ({len(migrations)}): upgrade Lamina or use another data directory"
            )
        for version in range(current + 1, len(migrations) + 1):
            # Statement by statement: executescript() would COMMIT first and break atomicity.
            for statement in _statements(migrations[version - 1]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_ms) VALUES (?, ?)",
                (version, int(time.time() * 1000)),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current


def _statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (a ';' inside a trigger body does not end one)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\n;"):
        raise ConfigError(f"incomplete SQL statement in migration: {pending.strip()[:80]!r}")
