//! Replays every file of the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same
//! function its fuzz target calls, on the stable toolchain.

use std::{fs, path::Path};

use streamgate_validate::fuzzing;

/// The body of one fuzz target.
type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("address", fuzzing::address),
    ("hash", fuzzing::hash),
    ("email", fuzzing::email),
    ("sanitize", fuzzing::sanitize),
    ("json_body", fuzzing::json_body),
];

#[test]
fn every_corpus_file_replays_without_panic() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, run) in TARGETS {
        let dir = corpus.join(target);
        let mut replayed = 0;
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            run(&fs::read(&path).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 5, "{target}: only {replayed} corpus files");
    }
}
