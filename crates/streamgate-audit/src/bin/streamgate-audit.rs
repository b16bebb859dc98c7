//! `streamgate-audit verify <file-or-dir> [--key-hex HEX | --key-file PATH]`
//!
//! With the `postgres` feature, `<file-or-dir>` may also be a `postgres://` URL, with
//! `--instance ID` (required) and `--table NAME` (default `audit_events`): the chain of that
//! replica is read from the database.
//!
//! Checks an audit log written by the file sink: prints `OK` and what was checked, or the first
//! bad record and why (modified, deleted, reordered, missing file, truncated, bad signature),
//! exiting with status 1. The key may also come from `STREAMGATE_AUDIT_KEY` (hex). Usage errors
//! exit with status 2.

use std::{path::PathBuf, process::ExitCode};

use streamgate_audit::{SigningKey, verify_path};

const USAGE: &str = "usage: streamgate-audit verify <file-or-dir> [--key-hex HEX | --key-file PATH]\n\
                     (or set STREAMGATE_AUDIT_KEY to the key in hex)\n\
                     with the postgres feature: streamgate-audit verify postgres://USER@HOST/DB --instance ID [--table NAME] [key]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode, String> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("verify") => {}
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        _ => return Err("expected the `verify` command".to_owned()),
    }
    let mut path = None;
    let mut key = None;
    let mut instance: Option<String> = None;
    let mut table = "audit_events".to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--instance" => instance = Some(args.next().ok_or("--instance needs a value")?),
            "--table" => table = args.next().ok_or("--table needs a value")?,
            "--key-hex" => key = Some(args.next().ok_or("--key-hex needs a value")?),
            "--key-file" => {
                let file = args.next().ok_or("--key-file needs a value")?;
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {file}: {e}"))?;
                key = Some(text);
            }
            _ if path.is_none() => path = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument `{arg}`")),
        }
    }
    let path = path.ok_or("missing the log file or directory")?;
    let key = key
        .or_else(|| std::env::var("STREAMGATE_AUDIT_KEY").ok())
        .ok_or("missing the signing key")?;
    let key = SigningKey::from_hex(&key).map_err(|e| e.to_string())?;
    let text = path.to_string_lossy();
    let result = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let instance = instance.ok_or("--instance is required with a PostgreSQL URL")?;
        verify_database(&text, &table, &instance, &key)?
    } else {
        verify_path(&path, &key)
    };
    match result {
        Ok(report) => {
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(feature = "postgres")]
fn verify_database(
    url: &str,
    table: &str,
    instance: &str,
    key: &SigningKey,
) -> Result<Result<streamgate_audit::VerifyReport, streamgate_audit::VerifyFailure>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(
        runtime.block_on(streamgate_audit::postgres::verify_postgres(
            url, table, instance, key,
        )),
    )
}

#[cfg(not(feature = "postgres"))]
fn verify_database(
    _url: &str,
    _table: &str,
    _instance: &str,
    _key: &SigningKey,
) -> Result<Result<streamgate_audit::VerifyReport, streamgate_audit::VerifyFailure>, String> {
    Err("this build has no PostgreSQL support (cargo feature `postgres`)".to_owned())
}
