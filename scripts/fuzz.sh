#!/usr/bin/env bash
# Fuzzes every codec and the server's frame reassembly with libFuzzer (cargo-fuzz, nightly),
# each target for a bounded time, starting from the seed corpus in fuzz/seeds/. A crash (a
# panic, a violated property, an AddressSanitizer report) fails.
#
#   scripts/fuzz.sh                      every target, 20 s each (what CI runs)
#   FUZZ_SECONDS=600 scripts/fuzz.sh reassembly
#
# Installs the nightly toolchain and cargo-fuzz (crates.io) if they are missing. What a run
# finds stays under fuzz/target/ (corpus) and fuzz/artifacts/ (crashes), both ignored by git;
# reproduce a crash with `cargo +nightly fuzz run -a <target> <artifact>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
runs=${FUZZ_RUNS:-5000000}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

# libfuzzer-sys compiles libFuzzer (C++).
if ! command -v c++ >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq g++
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked

echo "fmt and clippy of the fuzz crate"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings

# -a: debug assertions and overflow checks on, as in tests; AddressSanitizer is cargo-fuzz's
# default.
fuzz=(cargo +nightly fuzz)
"${fuzz[@]}" build -a
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <("${fuzz[@]}" list)
for target in "${targets[@]}"; do
  corpus=fuzz/target/corpus/$target
  artifacts=fuzz/artifacts/$target
  mkdir -p "$corpus" "$artifacts"
  echo "--- $target: ${seconds}s or $runs runs"
  if ! "${fuzz[@]}" run -a "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$corpus.log" 2>&1; then
    grep -m1 -A3 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer' "$corpus.log" || true
    grep -v '^#' "$corpus.log" | tail -25
    echo "fuzz target $target failed; reproduce: cargo +nightly fuzz run -a $target $artifacts/<crash file>"
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$corpus.log" || true
done
echo "fuzzing passed: ${targets[*]}"
