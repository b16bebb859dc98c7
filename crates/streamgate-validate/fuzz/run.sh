#!/usr/bin/env bash
# Builds the fuzz targets and runs each one for a bounded time, starting from the committed corpus.
#
#   bash crates/streamgate-validate/fuzz/run.sh [seconds per target, default 10]
#
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its unstable flags, and `-s none`
# builds without a sanitizer (coverage-guided libFuzzer only). New inputs go to a scratch
# directory, so the committed corpus is only read. A crash fails the script (libFuzzer exits
# non-zero and leaves the input in fuzz/artifacts/<target>/).
set -euo pipefail

seconds="${1:-10}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate_dir="$(dirname "$fuzz_dir")"
targets=(address hash email sanitize json_body)

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cd "$crate_dir"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run -s none "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=0
done
