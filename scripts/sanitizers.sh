#!/usr/bin/env bash
# AddressSanitizer (nightly, -Zsanitizer=address; its leak checker on too) over the code that
# runs the backends' unsafe blocks: the lib unit tests, the behaviour suite and the server
# suite (every backend each), and the CLI tests, whose `ringport` binary is built with ASan too.
# Any report (use after free, overflow, double free, leak) fails.
#
# What ASan sees: every access our code makes (std is not instrumented: no rust-src here, so no
# -Zbuild-std). What it cannot see: writes the kernel makes into our memory on its own (an
# io_uring receive into a buffer freed too early would go unnoticed until our code read it).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address"
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1"
cargo +nightly test -j2 --target "$host" --target-dir target/asan \
  -p ringport --lib --test behaviour --test server
cargo +nightly test -j2 --target "$host" --target-dir target/asan -p ringport-cli
echo "AddressSanitizer: no reports"
