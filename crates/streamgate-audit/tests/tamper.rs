//! Acceptance 2: every kind of tampering is named by `verify`; untouched logs verify OK.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::json;
use sha2::{Digest, Sha256};
use streamgate_audit::{
    AuditLogger, FileSink, FileSinkConfig, Outcome, SigningKey, TamperKind, verify_path,
};

/// A log of 200 events over several files (rotation by size), with a checkpoint every 10
/// records; `close` ends it with a final checkpoint, otherwise the last 5 events follow the last
/// checkpoint (the head still covers them).
async fn build_log(dir: &Path, close: bool) {
    let config = FileSinkConfig::new(dir, common::key())
        .max_file_bytes(8 * 1024)
        .checkpoint_every(10)
        .checkpoint_interval(Duration::from_secs(3600));
    let logger = AuditLogger::builder()
        .sink(FileSink::open(config).unwrap())
        .start();
    let count = if close { 200 } else { 205 };
    for i in 0..count {
        logger
            .log_event(
                "data_modification",
                format!("user-{}", i % 7),
                "update",
                format!("item-{i}"),
                Outcome::Success,
                json!({"i": i}),
            )
            .await
            .unwrap();
        // Small batches, so checkpoints land between events rather than all at the end.
        if i % 3 == 0 {
            logger.flush().await;
        }
    }
    if close {
        logger.shutdown().await;
    } else {
        logger.flush().await;
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn lines(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(file: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(file, text).unwrap();
}

fn failure(dir: &Path) -> streamgate_audit::VerifyFailure {
    verify_path(dir, &common::key()).expect_err("tampering must be detected")
}

/// Sets a line's `prev` and recomputes its hash, as someone without the key could.
fn rehash(line: &str, prev: &str) -> (String, String) {
    let content = &line[..line.len() - 75];
    let at = content.find("\"prev\":\"").unwrap() + 8;
    let content = format!("{}{}{}", &content[..at], prev, &content[at + 64..]);
    let hash = hex::encode(Sha256::digest(content.as_bytes()));
    (format!("{content},\"hash\":\"{hash}\"}}"), hash)
}

fn hash_of(line: &str) -> String {
    line[line.len() - 66..line.len() - 2].to_owned()
}

#[tokio::test]
async fn untouched_rotated_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    assert!(files(dir.path()).len() >= 4, "the test needs several files");
    let report = verify_path(dir.path(), &common::key()).unwrap();
    assert_eq!(report.events, 200);
    assert!(report.checkpoints >= 20);
    assert!(report.head_checked);
    // Each file verifies on its own too.
    for file in files(dir.path()) {
        verify_path(&file, &common::key()).unwrap();
    }
}

#[tokio::test]
async fn a_changed_byte_is_modified() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let file = &files(dir.path())[1];
    let mut l = lines(file);
    l[3] = l[3].replacen("item-", "item_", 1);
    write_lines(file, &l);
    let failure = failure(dir.path());
    assert_eq!(failure.kind, TamperKind::Modified, "{failure}");
    assert_eq!(
        (failure.file.as_path(), failure.line),
        (file.as_path(), Some(4))
    );
}

#[tokio::test]
async fn a_changed_record_with_the_chain_recomputed_fails_the_signatures() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let all = files(dir.path());
    let mut running = hash_of(&lines(&all[1])[2]);
    let mut first = true;
    for file in &all[1..] {
        let mut l = lines(file);
        let skip = if first { 3 } else { 0 };
        for line in l.iter_mut().skip(skip) {
            if first {
                *line = line.replacen("item-", "forged-", 1);
                first = false;
            }
            let (new, hash) = rehash(line, &running);
            *line = new;
            running = hash;
        }
        write_lines(file, &l);
    }
    let failure = failure(dir.path());
    assert_eq!(failure.kind, TamperKind::BadSignature, "{failure}");
    assert_eq!(failure.file, all[1]);
}

#[tokio::test]
async fn a_deleted_middle_record_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let file = &files(dir.path())[2];
    let mut l = lines(file);
    l.remove(4);
    write_lines(file, &l);
    let failure = failure(dir.path());
    assert_eq!(failure.kind, TamperKind::Deleted, "{failure}");
    assert_eq!(failure.line, Some(5));
}

#[tokio::test]
async fn two_swapped_records_are_reordered() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let file = &files(dir.path())[2];
    let mut l = lines(file);
    l.swap(4, 5);
    write_lines(file, &l);
    let failure = failure(dir.path());
    assert_eq!(failure.kind, TamperKind::Reordered, "{failure}");
    assert_eq!(failure.line, Some(5));
}

#[tokio::test]
async fn a_rotated_file_deleted_from_the_middle_is_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let all = files(dir.path());
    fs::remove_file(&all[2]).unwrap();
    let failure = failure(dir.path());
    assert_eq!(failure.kind, TamperKind::MissingFile, "{failure}");
    assert!(
        failure.detail.contains("log file 3 is missing"),
        "{failure}"
    );
}

#[tokio::test]
async fn the_newest_file_deleted_is_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let all = files(dir.path());
    fs::remove_file(all.last().unwrap()).unwrap();
    assert_eq!(failure(dir.path()).kind, TamperKind::MissingFile);
}

#[tokio::test]
async fn the_tail_truncated_after_the_last_checkpoint_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), false).await;
    verify_path(dir.path(), &common::key()).unwrap();
    let file = files(dir.path()).last().unwrap().clone();
    let mut l = lines(&file);
    let last_checkpoint = l
        .iter()
        .rposition(|line| line.contains("\"kind\":\"checkpoint\""))
        .unwrap();
    assert!(
        last_checkpoint + 1 < l.len(),
        "events must follow the last checkpoint"
    );
    l.truncate(last_checkpoint + 1);
    write_lines(&file, &l);
    let failure = failure(dir.path());
    assert_eq!(failure.kind, TamperKind::Truncated, "{failure}");
    assert!(failure.detail.contains("signed head"), "{failure}");
}

#[tokio::test]
async fn a_record_cut_in_half_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let file = files(dir.path()).last().unwrap().clone();
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, &text[..text.len() - 40]).unwrap();
    assert_eq!(failure(dir.path()).kind, TamperKind::Truncated);
}

#[tokio::test]
async fn a_forged_head_or_a_wrong_key_is_a_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let wrong = SigningKey::new(&[1; 32]).unwrap();
    assert_eq!(
        verify_path(dir.path(), &wrong).unwrap_err().kind,
        TamperKind::BadSignature
    );
    let head_path = dir.path().join("head.json");
    let mut head: serde_json::Value =
        serde_json::from_slice(&fs::read(&head_path).unwrap()).unwrap();
    head["seq"] = json!(head["seq"].as_u64().unwrap() - 3);
    fs::write(&head_path, head.to_string()).unwrap();
    assert_eq!(failure(dir.path()).kind, TamperKind::BadSignature);
    fs::remove_file(&head_path).unwrap();
    assert_eq!(failure(dir.path()).kind, TamperKind::MissingHead);
}

#[tokio::test]
async fn reopening_continues_the_chain_in_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let before = files(dir.path()).len();
    let logger = AuditLogger::builder()
        .sink(common::file_sink(dir.path()))
        .start();
    logger
        .log_event(
            "admin",
            "root",
            "restart",
            "service",
            Outcome::Success,
            json!(null),
        )
        .await
        .unwrap();
    logger.shutdown().await;
    assert_eq!(files(dir.path()).len(), before + 1);
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 201);
}

#[test]
fn the_command_prints_ok_or_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(build_log(dir.path(), true));
    let bin = env!("CARGO_BIN_EXE_streamgate-audit");
    let key_hex = hex::encode([0x5a; 32]);
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .env_remove("STREAMGATE_AUDIT_KEY")
            .output()
            .unwrap()
    };
    let dir_arg = dir.path().to_str().unwrap();
    let ok = run(&["verify", dir_arg, "--key-hex", &key_hex]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK"));

    let file = &files(dir.path())[1];
    let mut l = lines(file);
    l.remove(2);
    write_lines(file, &l);
    let bad = run(&["verify", dir_arg, "--key-hex", &key_hex]);
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("deleted") && out.contains(":3:"), "{out}");

    let usage = run(&["verify", dir_arg]);
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test]
async fn an_empty_file_left_by_a_crash_is_dropped_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let last = files(dir.path()).last().unwrap().clone();
    let name = last.file_name().unwrap().to_str().unwrap();
    let index: u64 = name[6..14].parse().unwrap();
    let crashed = dir
        .path()
        .join(format!("audit-{:08}-20990101T000000Z.jsonl", index + 1));
    fs::write(&crashed, "").unwrap();
    let logger = AuditLogger::builder()
        .sink(common::file_sink(dir.path()))
        .start();
    logger.shutdown().await;
    assert!(!crashed.exists());
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 200);
}

#[tokio::test]
async fn a_file_name_with_other_characters_is_not_part_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    fs::write(
        dir.path().join("audit-00000001-202\u{e9}112T031705Z.jsonl"),
        "x\n",
    )
    .unwrap();
    verify_path(dir.path(), &common::key()).unwrap();
    drop(common::file_sink(dir.path()));
    verify_path(dir.path(), &common::key()).unwrap();
}

#[test]
fn a_record_at_the_largest_sequence_number_is_modified_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let content = format!(
        "{{\"seq\":{},\"prev\":\"{}\",\"kind\":\"file_start\",\"file\":1,\"ts\":\"2026-01-01T00:00:00.000Z\"",
        u64::MAX,
        "0".repeat(64)
    );
    let hash = hex::encode(Sha256::digest(content.as_bytes()));
    let path = dir.path().join("audit-00000001-20260101T000000Z.jsonl");
    fs::write(&path, format!("{content},\"hash\":\"{hash}\"}}\n")).unwrap();
    let failure = verify_path(&path, &common::key()).unwrap_err();
    assert_eq!(failure.kind, TamperKind::Modified);
    assert_eq!(failure.seq, Some(u64::MAX));
}

/// Opening the sink on `dir` again, as a restart does.
fn reopen(dir: &Path) -> std::io::Result<FileSink> {
    FileSink::open(FileSinkConfig::new(dir, common::key()))
}

/// Reopening refuses, with an error naming the directory and the way out, and leaves the log
/// as it found it.
fn assert_refused(dir: &Path) {
    let before: Vec<(PathBuf, Vec<u8>)> = files(dir)
        .into_iter()
        .map(|f| (f.clone(), fs::read(&f).unwrap()))
        .collect();
    let head = fs::read(dir.join("head.json")).ok();
    let error = reopen(dir).expect_err("a damaged log must not be continued");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let message = error.to_string();
    let shown = dir.display().to_string();
    assert!(message.contains(&shown), "{message}");
    assert!(
        message.contains(&format!("streamgate-audit verify {shown}")),
        "{message}"
    );
    let after: Vec<(PathBuf, Vec<u8>)> = files(dir)
        .into_iter()
        .map(|f| (f.clone(), fs::read(&f).unwrap()))
        .collect();
    assert_eq!(before, after);
    assert_eq!(fs::read(dir.join("head.json")).ok(), head);
}

/// The `recovered` member of the first record of the newest file.
fn recovered(dir: &Path) -> serde_json::Value {
    let first = lines(files(dir).last().unwrap()).remove(0);
    let record: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(record["kind"], "file_start");
    record["recovered"].clone()
}

#[tokio::test]
async fn a_restart_refuses_a_log_cut_short_of_its_head() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let last = files(dir.path()).last().unwrap().clone();
    let mut l = lines(&last);
    l.truncate(l.len() - 4);
    write_lines(&last, &l);
    assert_eq!(failure(dir.path()).kind, TamperKind::Truncated);
    assert_refused(dir.path());
    assert_eq!(failure(dir.path()).kind, TamperKind::Truncated);
}

#[tokio::test]
async fn a_restart_refuses_log_files_without_a_head() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let all = files(dir.path());
    fs::remove_file(&all[0]).unwrap();
    fs::remove_file(&all[1]).unwrap();
    fs::remove_file(dir.path().join("head.json")).unwrap();
    assert_refused(dir.path());
    assert_eq!(failure(dir.path()).kind, TamperKind::MissingHead);
}

#[tokio::test]
async fn a_restart_refuses_a_missing_file_a_forged_head_or_a_changed_record() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let first = files(dir.path())[0].clone();
    let saved = fs::read(&first).unwrap();
    fs::remove_file(&first).unwrap();
    assert_refused(dir.path());
    fs::write(&first, saved).unwrap();

    let other = SigningKey::new(&[1; 32]).unwrap();
    let error = FileSink::open(FileSinkConfig::new(dir.path(), other)).unwrap_err();
    assert!(error.to_string().contains("bad signature"), "{error}");

    // The head's record itself, changed and rehashed.
    let last = files(dir.path()).last().unwrap().clone();
    let mut l = lines(&last);
    let line = l
        .pop()
        .unwrap()
        .replace("\"kind\":\"checkpoint\"", "\"kind\":\"note\"");
    let at = line.find("\"prev\":\"").unwrap() + 8;
    let prev = line[at..at + 64].to_owned();
    l.push(rehash(&line, &prev).0);
    write_lines(&last, &l);
    assert_refused(dir.path());

    // Everything untouched again: it continues.
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    reopen(dir.path()).unwrap();
}

#[tokio::test]
async fn a_restart_continues_after_records_that_follow_the_head() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let old_head = fs::read(dir.path().join("head.json")).unwrap();
    let logger = AuditLogger::builder()
        .sink(common::file_sink(dir.path()))
        .start();
    logger
        .log_event("t", "u", "a", "r", Outcome::Success, json!(null))
        .await
        .unwrap();
    logger.shutdown().await;
    // As if the process had crashed before the head caught up with these records.
    fs::write(dir.path().join("head.json"), old_head).unwrap();
    assert_eq!(failure(dir.path()).kind, TamperKind::Unsigned);
    drop(reopen(dir.path()).unwrap());
    // A file start, the event and the closing checkpoint followed the head.
    assert_eq!(recovered(dir.path()), json!({"unsigned_records": 3}));
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 201);
}

#[tokio::test]
async fn a_record_cut_off_by_a_crash_is_removed_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), true).await;
    let last = files(dir.path()).last().unwrap().clone();
    let intact = fs::read(&last).unwrap();
    let mut torn = intact.clone();
    torn.extend_from_slice(b"{\"seq\":999,\"prev\":\"00");
    fs::write(&last, &torn).unwrap();
    assert_eq!(failure(dir.path()).kind, TamperKind::Truncated);
    drop(reopen(dir.path()).unwrap());
    assert_eq!(fs::read(&last).unwrap(), intact);
    let index: u64 = last.file_name().unwrap().to_str().unwrap()[6..14]
        .parse()
        .unwrap();
    assert_eq!(
        recovered(dir.path()),
        json!({"cut_off": [{"file": index, "bytes": 21}]})
    );
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 200);
}
