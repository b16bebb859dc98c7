//! Verification of one instance's chain stored in PostgreSQL.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::{
    file::{SigningKey, TamperKind, VerifyFailure, VerifyReport, record},
    postgres::{schema, sink::connect},
};

const PAGE: i64 = 10_000;

/// Verifies the chain of replica `instance` in `table` (and `<table>_heads`) of the database at
/// `url`: the signed head, sequence numbers without gaps from the head's first record, each
/// event's hash and link to the one before, and the newest record against the head.
///
/// Failures name the table and instance in [`VerifyFailure::file`] and the record in
/// [`VerifyFailure::seq`].
///
/// # Errors
/// The first problem found; [`TamperKind::Unreadable`] when the database cannot be read.
pub async fn verify_postgres(
    url: &str,
    table: &str,
    instance: &str,
    key: &SigningKey,
) -> Result<VerifyReport, VerifyFailure> {
    let place = PathBuf::from(format!("postgres:{table}/{instance}"));
    let fail = |kind, seq: Option<i64>, detail: String| VerifyFailure {
        kind,
        file: place.clone(),
        line: None,
        seq: seq.and_then(|s| u64::try_from(s).ok()),
        detail,
    };
    let unreadable = |e: String| fail(TamperKind::Unreadable, None, e);
    schema::check_table(table).map_err(|e| unreadable(e.to_string()))?;
    let client = connect(url, std::time::Duration::from_secs(10))
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    let head = client
        .query_opt(
            &format!("SELECT first_seq, seq, hash, sig FROM {table}_heads WHERE instance_id = $1"),
            &[&instance],
        )
        .await
        .map_err(|e| unreadable(e.to_string()))?
        .ok_or_else(|| {
            fail(
                TamperKind::MissingHead,
                None,
                "there is no signed head for this instance".to_owned(),
            )
        })?;
    let (first_seq, head_seq, head_hash, sig): (i64, i64, String, String) =
        (head.get(0), head.get(1), head.get(2), head.get(3));
    if !key.verify(
        &schema::head_message(instance, first_seq, head_seq, &head_hash),
        &sig,
    ) {
        return Err(fail(
            TamperKind::BadSignature,
            None,
            "the head's signature does not match its content (or the key is wrong)".to_owned(),
        ));
    }
    let mut report = VerifyReport {
        files: 1,
        head_checked: true,
        ..VerifyReport::default()
    };
    let mut expected = first_seq;
    let mut last_hash: Option<[u8; 32]> = None;
    let mut buf = Vec::new();
    loop {
        let rows = client
            .query(
                &format!(
                    "SELECT seq, event, prev, hash FROM {table}
                     WHERE instance_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3"
                ),
                &[&instance, &expected, &PAGE],
            )
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let page_len = rows.len();
        for row in rows {
            let (seq, event, prev, hash): (i64, String, String, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if seq != expected {
                let detail = if seq == expected + 1 {
                    format!("record {expected} is missing")
                } else {
                    format!("records {expected} to {} are missing", seq - 1)
                };
                return Err(fail(TamperKind::Deleted, Some(seq), detail));
            }
            let (Some(prev), Some(hash)) = (
                record::parse_hex32(prev.as_bytes()),
                record::parse_hex32(hash.as_bytes()),
            ) else {
                return Err(fail(
                    TamperKind::Modified,
                    Some(seq),
                    "a stored hash is not hex".to_owned(),
                ));
            };
            if let Some(last) = last_hash
                && last != prev
            {
                return Err(fail(
                    TamperKind::Modified,
                    Some(seq),
                    "the record does not chain to the one before it (that record was changed or replaced)".to_owned(),
                ));
            }
            buf.clear();
            record::begin(
                &mut buf,
                u64::try_from(seq).unwrap_or_default(),
                &prev,
                "event",
            );
            buf.extend_from_slice(b",\"event\":");
            buf.extend_from_slice(event.as_bytes());
            let actual: [u8; 32] = Sha256::digest(&buf).into();
            if actual != hash {
                return Err(fail(
                    TamperKind::Modified,
                    Some(seq),
                    "the record's content does not match its hash".to_owned(),
                ));
            }
            last_hash = Some(hash);
            report.records += 1;
            report.events += 1;
            expected += 1;
        }
        if i64::try_from(page_len).unwrap_or(0) < PAGE {
            break;
        }
    }
    let last = expected - 1;
    if last < head_seq {
        return Err(fail(
            TamperKind::Truncated,
            Some(last.max(0)),
            format!("the chain ends at record {last} but the signed head names record {head_seq}"),
        ));
    }
    if last > head_seq {
        return Err(fail(
            TamperKind::Unsigned,
            Some(head_seq + 1),
            format!(
                "{} records follow the position the signed head names",
                last - head_seq
            ),
        ));
    }
    if last_hash.map(|h| record::hex32(&h)) != Some(head_hash) && report.records > 0 {
        return Err(fail(
            TamperKind::Modified,
            Some(last),
            "the record at the signed head's position is not the one that was signed".to_owned(),
        ));
    }
    Ok(report)
}
