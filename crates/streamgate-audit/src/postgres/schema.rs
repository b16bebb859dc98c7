//! Table creation and the SQL the sink runs.

use crate::sink::SinkError;

/// Checks that `table` is a plain lowercase identifier (it is spliced into SQL).
pub(crate) fn check_table(table: &str) -> Result<(), SinkError> {
    let ok = !table.is_empty()
        && table.len() <= 48
        && table
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && table
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(SinkError::new(format!(
            "`{table}` is not a valid audit table name (lowercase letters, digits and _, at most 48)"
        )))
    }
}

/// The tables and indexes [`migrate`] creates; when all exist the DDL is skipped (even
/// `CREATE INDEX IF NOT EXISTS` takes a SHARE lock on the table).
pub(crate) fn objects(table: &str) -> Vec<String> {
    [
        "",
        "_actor_ts",
        "_wallet_ts",
        "_type_ts",
        "_ts",
        "_heads",
        "_id",
    ]
    .iter()
    .map(|suffix| format!("{table}{suffix}"))
    .collect()
}

/// The DDL, run in one transaction under an advisory lock.
pub(crate) fn migrate(table: &str) -> String {
    format!(
        "SELECT pg_advisory_xact_lock(hashtext('streamgate_audit:{table}'));
         CREATE TABLE IF NOT EXISTS {table} (
             instance_id TEXT NOT NULL,
             seq BIGINT NOT NULL,
             id UUID NOT NULL,
             ts TIMESTAMPTZ NOT NULL,
             event_type TEXT NOT NULL,
             actor TEXT NOT NULL,
             wallet TEXT,
             event TEXT NOT NULL,
             prev TEXT NOT NULL,
             hash TEXT NOT NULL,
             PRIMARY KEY (instance_id, seq)
         );
         CREATE INDEX IF NOT EXISTS {table}_actor_ts ON {table} (actor, ts);
         CREATE INDEX IF NOT EXISTS {table}_wallet_ts ON {table} (wallet, ts);
         CREATE INDEX IF NOT EXISTS {table}_type_ts ON {table} (event_type, ts);
         CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts);
         CREATE TABLE IF NOT EXISTS {table}_heads (
             instance_id TEXT PRIMARY KEY,
             first_seq BIGINT NOT NULL,
             seq BIGINT NOT NULL,
             hash TEXT NOT NULL,
             sig TEXT NOT NULL
         );"
    )
}

/// The unique index on event ids, created apart from [`migrate`] so that a table from an
/// earlier version holding duplicates (or too large to index within the timeout) still takes
/// writes; the sink warns and tries again at its next connection.
pub(crate) fn unique_id(table: &str) -> String {
    format!("CREATE UNIQUE INDEX IF NOT EXISTS {table}_id ON {table} (id)")
}

/// The batch insert. Rows whose id (or instance and sequence number) are already stored are
/// skipped; the sink compares the count inserted with the batch and fails when they differ.
/// No conflict target, so that it works before [`unique_id`] exists.
pub(crate) fn insert(table: &str) -> String {
    format!(
        "INSERT INTO {table} (instance_id, seq, id, ts, event_type, actor, wallet, event, prev, hash)
         SELECT $1, s, i::uuid, t::timestamptz, ty, a, w, e, p, h
         FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::text[], $9::text[], $10::text[]) AS u(s, i, t, ty, a, w, e, p, h)
         ON CONFLICT DO NOTHING"
    )
}

pub(crate) fn upsert_head(table: &str) -> String {
    format!(
        "INSERT INTO {table}_heads (instance_id, first_seq, seq, hash, sig)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (instance_id) DO UPDATE
         SET first_seq = EXCLUDED.first_seq, seq = EXCLUDED.seq, hash = EXCLUDED.hash,
             sig = EXCLUDED.sig"
    )
}

/// What a head signs.
pub(crate) fn head_message(instance: &str, first_seq: i64, seq: i64, hash: &str) -> Vec<u8> {
    format!("streamgate-audit/postgres-head/v1\n{instance}\n{first_seq}\n{seq}\n{hash}")
        .into_bytes()
}
