//! What the tests that start a real program share.

use std::process::{Command, Stdio};

/// Whether `program` (from Debian's `package`) runs here. When it does not, the test should
/// return: outside CI this prints why it was skipped; with `CI=true` it fails the test instead.
pub(crate) fn installed(program: &str, package: &str) -> bool {
    let installed = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed (apt-get install {package}); CI needs it"
        );
        eprintln!("skipped: {program} is not installed (apt-get install {package})");
    }
    installed
}
